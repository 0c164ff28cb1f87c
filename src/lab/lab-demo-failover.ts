// The demo's failover part (issue 15 item 7): a FloatingIP that selects two
// labelled pods on two nodes, its holder killed (its Pod record marked
// deleted, then CNI DEL, as kubectl delete and the runtime would) while the
// external client pings the address at 100 Hz, and the interruption that
// caused: ICMP for the plain number, and a UDP stream alongside whose answers
// name the pod that sent each, so the standby is seen taking over and no
// request is ever answered by both.
import { LabError, type Lab } from "./lab.js";
import { floatingIpManifest } from "./lab-pod-record.js";
import { sleep } from "./lab-shell.js";
import type { PingReport, UdpPingReport } from "./ping-report.js";

export const FAILOVER_FLOATING_IP = "203.0.113.20";
const LABELS = { app: "api" };
const PODS = [
  { node: 1, name: "api-a" },
  { node: 2, name: "api-b" },
] as const;
/** The ping runs this long; the holder is killed `KILL_AT_MS` in. */
const PING_MS = 5000;
const KILL_AT_MS = 1500;

export interface FailoverDemoOutcome {
  /** The pod that held the address before, and the one answering after. */
  holder: string;
  standby: string | undefined;
  ping: PingReport;
  udp: UdpPingReport;
}

export async function demonstrateFailover(
  lab: Lab,
  write: (text: string) => void,
  signal?: AbortSignal,
): Promise<FailoverDemoOutcome> {
  for (const { node, name } of PODS) await lab.addPod(node, name, { labels: LABELS });
  const manifest = floatingIpManifest("api", FAILOVER_FLOATING_IP, LABELS);
  write(
    `pods ${PODS.map(({ node, name }) => `default/${name} (node-${node})`).join(" and ")}, ` +
      `both labelled app=api and Ready\n` +
      `$ buoy apply -f - <<< '${manifest}'\n` +
      (await lab.buoy(["apply", "-f", "-"], manifest)),
  );
  const holder = await answeredBy(lab, (pod) => pod !== undefined, signal);
  if (holder === undefined) {
    throw new LabError(`no pod answers on ${FAILOVER_FLOATING_IP} 20 s after the FloatingIP`);
  }
  write(`$ buoy get floatingips ${FAILOVER_FLOATING_IP}\n${await getFloatingIp(lab)}`);

  write(
    `\nkill the holder, default/${holder}, ${KILL_AT_MS / 1000} s into a ${PING_MS / 1000} s ` +
      `100 Hz ping from the external client\n`,
  );
  // Settled right away: an interrupted demo must not leave a rejection unhandled.
  const settle = <T>(promise: Promise<T>) =>
    promise.then(
      (report) => ({ report }),
      (error: unknown) => ({ error }),
    );
  const pinging = settle(
    lab.ping("ext", FAILOVER_FLOATING_IP, { durationMs: PING_MS, intervalMs: 10 }),
  );
  const streaming = settle(
    lab.udpPing("ext", FAILOVER_FLOATING_IP, { durationMs: PING_MS, intervalMs: 10 }),
  );
  await sleep(KILL_AT_MS, signal);
  const killedAt = Date.now();
  await lab.deletePod(holder);
  write(`deleted default/${holder} in ${Date.now() - killedAt} ms (Pod record, then CNI DEL)\n`);
  const [pinged, streamed] = await Promise.all([pinging, streaming]);
  if ("error" in pinged) throw pinged.error;
  if ("error" in streamed) throw streamed.error;
  const ping = pinged.report;
  const udp = streamed.report;
  const standby = await answeredBy(lab, (pod) => pod !== undefined && pod !== holder, signal);
  write(
    `ICMP ping at 100 Hz: ${ping.sent} sent, ${ping.received} answered, ${ping.lost} lost; ` +
      `longest time without an answer ${ping.longestGapMs} ms\n` +
      `UDP at 100 Hz, each answer naming its pod: answered by ${udp.pods.join(", then ") || "no pod"}; ` +
      `longest time without an answer ${udp.longestGapMs} ms; ` +
      `${udp.answeredByTwo} requests answered by two pods\n` +
      (standby === undefined
        ? `no other pod answers on ${FAILOVER_FLOATING_IP}\n`
        : `${FAILOVER_FLOATING_IP} is now answered by the standby, default/${standby}\n`) +
      `$ buoy get floatingips ${FAILOVER_FLOATING_IP}\n${await getFloatingIp(lab)}`,
  );
  return { holder, standby, ping, udp };
}

async function getFloatingIp(lab: Lab): Promise<string> {
  return lab.buoy(["get", "floatingips", FAILOVER_FLOATING_IP]).catch((error: unknown) => {
    return `(${error instanceof Error ? error.message : String(error)})\n`;
  });
}

/** The pod answering UDP on the address, once `wanted` holds for it (20 s at most). */
async function answeredBy(
  lab: Lab,
  wanted: (pod: string | undefined) => boolean,
  signal: AbortSignal | undefined,
): Promise<string | undefined> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const result = await lab.probe("ext", FAILOVER_FLOATING_IP, "udp", { timeoutMs: 300 });
    const pod = result.ok ? result.answeredBy : undefined;
    if (wanted(pod)) return pod;
    await sleep(100, signal);
  }
  return undefined;
}
