import { describe, expect, it } from "vitest";
import type { FloatingIpClaim, IpPool, IpamBlock } from "../model/records.js";
import { claimAll, type ClaimOptions, type ClaimPort } from "./claim-protocol.js";
import { claimFromObject, type KubeObject } from "./objects.js";
import { regionCidrOf } from "../ipam/region.js";

const pool: IpPool = {
  name: "floating",
  cidr: "10.96.0.0/24",
  blockSize: 26,
  disabled: false,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
};

function claim(ip: string, containerID = "c1"): FloatingIpClaim {
  return {
    ip,
    namespace: "shop",
    pod: "web",
    containerID,
    node: "node-1",
    internalIP: "10.244.0.5",
    createdAt: "",
  };
}

/** A port over a map of claims (by IP) and the given blocks, recording its calls. */
function fakePort(blocks: IpamBlock[] = [], failDelete = false) {
  const claims = new Map<string, KubeObject>();
  const calls: string[] = [];
  let uid = 0;
  const port: ClaimPort = {
    createClaim(object) {
      const ip = (object.spec as { ip: string }).ip;
      calls.push(`create ${ip}`);
      if (claims.has(ip)) return Promise.resolve(undefined);
      const created = { ...object, metadata: { ...object.metadata, uid: `u${++uid}` } };
      claims.set(ip, created);
      return Promise.resolve(`u${uid}`);
    },
    getClaim(ip) {
      calls.push(`get ${ip}`);
      return Promise.resolve(claims.get(ip));
    },
    deleteClaim(ip, id) {
      calls.push(`delete ${ip} ${id}`);
      if (failDelete) return Promise.reject(new Error("away"));
      if (claims.get(ip)?.metadata.uid === id) claims.delete(ip);
      return Promise.resolve();
    },
    getBlock(cidr) {
      calls.push(`block ${cidr}`);
      return Promise.resolve(blocks.find((block) => block.cidr === cidr));
    },
    getRegion(cidr) {
      const listed = blocks.filter((block) => regionCidrOf(block.cidr) === cidr);
      return Promise.resolve(
        listed.length > 0 ? { cidr, blocks: listed.map((block) => block.cidr) } : undefined,
      );
    },
  };
  return { port, claims, calls };
}

const options = (more: Partial<ClaimOptions> = {}): ClaimOptions => ({
  nodeUID: undefined,
  pools: [pool],
  attempts: 3,
  exhausted: (ip) => new Error(`claiming floating IP ${ip} kept conflicting`),
  checkEach: false,
  ...more,
});

const podBlock: IpamBlock = {
  cidr: "10.96.0.0/26",
  affinity: "node-2",
  allocations: { "10.96.0.2": { handle: "other", namespace: "shop", pod: "db", node: "node-2" } },
};

describe("claimAll()", () => {
  it("creates every claim, reads the blocks after all of them, then runs `then`", async () => {
    const { port, claims, calls } = fakePort();
    let then = false;
    await claimAll(port, [claim("10.96.0.1"), claim("10.96.0.3")], {
      ...options(),
      then: () => {
        then = true;
        return Promise.resolve();
      },
    });
    expect(then).toBe(true);
    expect([...claims.keys()]).toEqual(["10.96.0.1", "10.96.0.3"]);
    expect(calls).toEqual([
      "create 10.96.0.1",
      "create 10.96.0.3",
      "block 10.96.0.0/26",
      "block 10.96.0.0/26",
    ]);
  });

  it("reads each block right after its claim with checkEach", async () => {
    const { port, calls } = fakePort();
    await claimAll(port, [claim("10.96.0.1"), claim("10.96.0.3")], options({ checkEach: true }));
    expect(calls).toEqual([
      "create 10.96.0.1",
      "block 10.96.0.0/26",
      "create 10.96.0.3",
      "block 10.96.0.0/26",
    ]);
  });

  it("accepts a claim the container holds already, and names another holder", async () => {
    const { port, claims } = fakePort();
    await claimAll(port, [claim("10.96.0.1")], options());
    await claimAll(port, [claim("10.96.0.1")], options());
    expect(claims.size).toBe(1);
    await expect(claimAll(port, [claim("10.96.0.1", "c2")], options())).rejects.toThrow(
      "floating IP 10.96.0.1 is already held by pod shop/web",
    );
    expect(claimFromObject(claims.get("10.96.0.1") as KubeObject).containerID).toBe("c1");
  });

  it("finds a pod's address in a block of another size than the pool's blockSize", async () => {
    // The pool says /26 now; the block was made as a /28 (or by a pool that
    // overlapped this one): found through its region all the same.
    const small = { ...podBlock, cidr: "10.96.0.0/28" };
    const { port, claims, calls } = fakePort([small]);
    await expect(claimAll(port, [claim("10.96.0.2")], options())).rejects.toThrow(
      "floating IP 10.96.0.2 is the address of pod shop/db",
    );
    expect(claims.size).toBe(0);
    expect(calls).toContain("block 10.96.0.0/28");
  });

  it("refuses a pod's address and deletes the claims it made, not the ones held before", async () => {
    const { port, claims, calls } = fakePort([podBlock]);
    await claimAll(port, [claim("10.96.0.1")], options());
    await expect(
      claimAll(port, [claim("10.96.0.1"), claim("10.96.0.3"), claim("10.96.0.2")], options()),
    ).rejects.toThrow("floating IP 10.96.0.2 is the address of pod shop/db");
    expect([...claims.keys()]).toEqual(["10.96.0.1"]);
    expect(calls.filter((call) => call.startsWith("delete"))).toEqual([
      "delete 10.96.0.3 u2",
      "delete 10.96.0.2 u3",
    ]);
  });

  it("undoes the claims when `then` fails, and reports the ones it could not delete", async () => {
    const { port } = fakePort([], true);
    const left: string[][] = [];
    await expect(
      claimAll(port, [claim("10.96.0.1")], {
        ...options(),
        then: () => Promise.reject(new Error("patch refused")),
        notUndone: (ips) => left.push(ips),
      }),
    ).rejects.toThrow("patch refused");
    expect(left).toEqual([["10.96.0.1"]]);
  });

  it("creates again a claim deleted between create and read, and gives up after the attempts", async () => {
    const { port, calls } = fakePort();
    const vanishing: ClaimPort = {
      ...port,
      createClaim: () => {
        calls.push("create");
        return Promise.resolve(undefined);
      },
      getClaim: () => Promise.resolve(undefined),
    };
    await expect(claimAll(vanishing, [claim("10.96.0.1")], options())).rejects.toThrow(
      "claiming floating IP 10.96.0.1 kept conflicting",
    );
    expect(calls.filter((call) => call === "create")).toHaveLength(3);
  });
});
