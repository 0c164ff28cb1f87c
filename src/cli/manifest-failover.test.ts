import { describe, expect, it } from "vitest";
import { parseManifests } from "./manifest.js";

const FLOATING_IP = `apiVersion: buoy.dev/v1
kind: FloatingIP
metadata: {name: web, namespace: shop}
spec:
  address: "2001:DB8:0::0010"
  podSelector: {matchLabels: {app: web}}
`;
const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  uid: 5f1c0c1e-0000-4000-8000-000000000001
  labels: {app: web}
  creationTimestamp: "2026-12-04T06:00:00Z"
spec: {nodeName: node-1, containers: [{name: web, image: nginx}]}
status:
  phase: Running
  conditions:
  - {type: PodScheduled, status: "True"}
  - {type: Ready, status: "True", lastTransitionTime: "2026-12-04T06:00:05Z"}
`;

describe("parseManifests() of FloatingIP and Pod", () => {
  it("reads a FloatingIP that asks for an address from a pool", () => {
    const [resource] = parseManifests(
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec: {pool: floating, podSelector: {}}\n",
    );
    expect(resource).toMatchObject({
      kind: "FloatingIP",
      floatingIp: { namespace: "default", name: "web", spec: { pool: "floating", egress: false } },
    });
  });

  it("reads a FloatingIP: its namespace, canonical address and selector", () => {
    expect(parseManifests(FLOATING_IP)).toEqual([
      {
        kind: "FloatingIP",
        source: "document 1",
        floatingIp: {
          namespace: "shop",
          name: "web",
          spec: {
            address: "2001:db8::10",
            podSelector: { matchLabels: { app: "web" } },
            egress: false,
          },
        },
      },
    ]);
  });

  it("reads the parts of a Pod a selector and the controller read, nothing else", () => {
    expect(parseManifests(POD)).toEqual([
      {
        kind: "Pod",
        source: "document 1",
        pod: {
          metadata: {
            namespace: "shop",
            name: "web-0",
            uid: "5f1c0c1e-0000-4000-8000-000000000001",
            labels: { app: "web" },
            creationTimestamp: "2026-12-04T06:00:00.000Z",
          },
          spec: { nodeName: "node-1" },
          status: {
            phase: "Running",
            conditions: [
              { type: "Ready", status: "True", lastTransitionTime: "2026-12-04T06:00:05.000Z" },
            ],
          },
        },
      },
    ]);
  });

  const refused: [string, string, string][] = [
    [
      "a FloatingIP without an address",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec: {podSelector: {}}\n",
      "document 1: FloatingIP default/web: spec.address must be an IP address",
    ],
    [
      "a FloatingIP whose address is a range",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec: {address: 10.0.0.0/24, podSelector: {}}\n",
      "document 1: FloatingIP default/web: invalid floating IP '10.0.0.0/24': not an IP address",
    ],
    [
      "a FloatingIP with a selector operator Kubernetes does not have",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec:\n  address: 10.0.0.7\n  podSelector: {matchExpressions: [{key: app, operator: Like}]}\n",
      "document 1: FloatingIP default/web: podSelector.matchExpressions[0].operator must be In, NotIn, Exists or DoesNotExist",
    ],
    [
      "a FloatingIP with both an address and a pool",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec: {address: 10.0.0.7, pool: floating, podSelector: {}}\n",
      "document 1: FloatingIP default/web: give spec.address or spec.pool, not both",
    ],
    [
      "a FloatingIP whose pool cannot be a pool's name",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web}\nspec: {pool: Floating_1, podSelector: {}}\n",
      "document 1: FloatingIP default/web: spec.pool must be the name of an IP pool",
    ],
    [
      "a FloatingIP in a namespace that cannot be one",
      "apiVersion: buoy.dev/v1\nkind: FloatingIP\nmetadata: {name: web, namespace: Shop_1}\nspec: {address: 10.0.0.7, podSelector: {}}\n",
      "document 1: FloatingIP web: metadata.namespace must be lower-case letters, digits and '-'",
    ],
    [
      "a Pod without a uid",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0}\n",
      "document 1: Pod default/web-0: metadata.uid must be the pod's uid (K8S_POD_UID)",
    ],
    [
      "a Pod whose label value is not one",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, uid: u1, labels: {app: 'a b'}}\n",
      "document 1: Pod default/web-0: label app 'a b' is not a label value (a string)",
    ],
    [
      "a Pod whose Ready condition is neither True nor False",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0, uid: u1}\nstatus: {conditions: [{type: Ready, status: Maybe}]}\n",
      "document 1: Pod default/web-0: the Ready condition's status must be True or False",
    ],
    [
      "a Pod in another apiVersion",
      "apiVersion: buoy.dev/v1\nkind: Pod\nmetadata: {name: web-0, uid: u1}\n",
      "document 1: Pod in apiVersion 'buoy.dev/v1' is not supported (use v1)",
    ],
  ];
  for (const [what, text, message] of refused) {
    it(`refuses ${what}`, () => {
      expect(() => parseManifests(text)).toThrow(message);
    });
  }
});
