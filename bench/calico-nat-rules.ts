// The Calico baseline of bench:dataplane: the iptables rules Felix renders
// for floating IPs (felix/rules/nat.go), the scripts that load and change
// them with iptables-nft-restore, and the check of what the kernel holds.
import type { NatBinding } from "../src/dataplane/nat-plan.js";
import { runCommand } from "../src/exec/command.js";

export const DNAT_CHAIN = "cali-fip-dnat";
export const SNAT_CHAIN = "cali-fip-snat";

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The binding whose DNAT rule Felix puts last (it sorts floating IPs as strings). */
export function lastInChain(bindings: readonly NatBinding[]): NatBinding {
  return [...bindings].sort((a, b) => compareText(a.floating, b.floating)).at(-1)!;
}

export type IptVariant = "calico" | "dnat-only";

export interface ChainRules {
  chain: string;
  /** Rule specs without `-A chain`, in chain order, as iptables-save prints them. */
  rules: string[];
}

/** The chains Felix renders for these bindings (felix/rules/nat.go), sorted as strings like Felix. */
export function iptChains(bindings: readonly NatBinding[], variant: IptVariant): ChainRules[] {
  const byFloating = [...bindings].sort((a, b) => compareText(a.floating, b.floating));
  const dnat: ChainRules = {
    chain: DNAT_CHAIN,
    rules: byFloating.map((b) => `-d ${b.floating}/32 -j DNAT --to-destination ${b.pod}`),
  };
  if (variant === "dnat-only") return [dnat];
  const byPod = [...bindings].sort((a, b) => compareText(a.pod, b.pod));
  const snat: ChainRules = {
    chain: SNAT_CHAIN,
    rules: byPod.map((b) => `-s ${b.pod}/32 -d ${b.pod}/32 -j SNAT --to-source ${b.floating}`),
  };
  return [dnat, snat];
}

/** A full load of the nat table (no --noflush: the table is replaced). */
export function iptFullScript(chains: readonly ChainRules[]): string {
  const hasSnat = chains.some((c) => c.chain === SNAT_CHAIN);
  return [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...chains.map((c) => `:${c.chain} - [0:0]`),
    `-A PREROUTING -j ${DNAT_CHAIN}`,
    `-A OUTPUT -j ${DNAT_CHAIN}`,
    ...(hasSnat ? [`-A POSTROUTING -j ${SNAT_CHAIN}`] : []),
    ...chains.flatMap((c) => c.rules.map((rule) => `-A ${c.chain} ${rule}`)),
    "COMMIT",
    "",
  ].join("\n");
}

/** For --noflush: declaring a chain again flushes it; then every rule is appended. */
export function iptRewriteScript(chains: readonly ChainRules[]): string {
  return [
    "*nat",
    ...chains.map((c) => `:${c.chain} - [0:0]`),
    ...chains.flatMap((c) => c.rules.map((rule) => `-A ${c.chain} ${rule}`)),
    "COMMIT",
    "",
  ].join("\n");
}

/**
 * For --noflush, the way Felix's incremental writer updates a chain: from the
 * first rule that differs on, every position is replaced (`-R`), extra rules
 * appended or deleted at the end.
 */
export function iptFelixScript(
  before: readonly ChainRules[],
  after: readonly ChainRules[],
): { script: string; lines: number } {
  const lines: string[] = [];
  after.forEach((chain, index) => {
    const old = before[index]?.rules ?? [];
    const now = chain.rules;
    let first = 0;
    while (first < old.length && first < now.length && old[first] === now[first]) first++;
    for (let i = first; i < Math.max(old.length, now.length); i++) {
      if (i < old.length && i < now.length) lines.push(`-R ${chain.chain} ${i + 1} ${now[i]}`);
      else if (i < old.length) lines.push(`-D ${chain.chain} ${now.length + 1}`);
      else lines.push(`-A ${chain.chain} ${now[i]}`);
    }
  });
  return { script: ["*nat", ...lines, "COMMIT", ""].join("\n"), lines: lines.length };
}

export async function iptRestore(script: string, noflush: boolean): Promise<void> {
  await runCommand(["iptables-nft-restore", ...(noflush ? ["--noflush"] : [])], { input: script });
}

/** Throws unless the kernel's cali-fip-* chains hold exactly `chains`' rules, in order. */
export async function checkIptables(chains: readonly ChainRules[], what: string): Promise<void> {
  // Not harness.must: spawnSync's 1 MiB output limit is below a 10k-rule listing.
  const saved = (await runCommand(["iptables-nft-save", "-t", "nat"])).stdout.split("\n");
  for (const { chain, rules } of chains) {
    const actual = saved.filter((line) => line.startsWith(`-A ${chain} `));
    const expected = rules.map((rule) => `-A ${chain} ${rule}`);
    const bad = expected.findIndex((line, i) => actual[i] !== line);
    if (actual.length !== expected.length || bad >= 0) {
      throw new Error(
        `${what}: ${chain} holds ${actual.length} rules, expected ${expected.length}` +
          (bad >= 0 ? `; rule ${bad + 1} is '${actual[bad]}', expected '${expected[bad]}'` : ""),
      );
    }
  }
}
