import { describe, expect, it } from "vitest";
import { parseFloatingIpSwitch } from "./feature-switch.js";

describe("parseFloatingIpSwitch()", () => {
  const bounds: { desc: string; value: unknown; want: number }[] = [
    { desc: "16 when the key is absent", value: undefined, want: 16 },
    { desc: "the value the config sets", value: 40, want: 40 },
    { desc: "16 for a string, as the plugin refuses it", value: "40", want: 16 },
    { desc: "16 for zero", value: 0, want: 16 },
    { desc: "16 for a fraction", value: 2.5, want: 16 },
    { desc: "16 over 1024", value: 1025, want: 16 },
  ];
  for (const { desc, value, want } of bounds) {
    it(`parseFloatingIpSwitch() reads max_floating_ips_per_pod as ${desc}`, () => {
      const text = JSON.stringify({
        plugins: [
          {
            type: "calico",
            feature_control: { floating_ips: true },
            max_floating_ips_per_pod: value,
          },
        ],
      });
      expect(parseFloatingIpSwitch(text, "/x").maxFloatingIps).toBe(want);
    });
  }
  it("parseFloatingIpSwitch() gives the default bound when the config is not JSON or has no entry", () => {
    expect(parseFloatingIpSwitch("{", "/x").maxFloatingIps).toBe(16);
    expect(parseFloatingIpSwitch('{"plugins":[]}', "/x").maxFloatingIps).toBe(16);
  });

  const cases = [
    {
      desc: "the seed's conflist with the feature on",
      text: JSON.stringify({
        plugins: [{ type: "calico", feature_control: { floating_ips: true } }, { type: "portmap" }],
      }),
      enabled: true,
    },
    {
      desc: "a conflist without feature_control",
      text: JSON.stringify({ plugins: [{ type: "calico" }] }),
      enabled: false,
    },
    {
      desc: "buoy's own plugin name",
      text: JSON.stringify({
        plugins: [{ type: "buoy", feature_control: { floating_ips: true } }],
      }),
      enabled: true,
    },
    {
      desc: "a single-plugin config",
      text: JSON.stringify({ type: "calico", feature_control: { floating_ips: true } }),
      enabled: true,
    },
    {
      desc: "a string where a boolean belongs",
      text: JSON.stringify({
        plugins: [{ type: "calico", feature_control: { floating_ips: "true" } }],
      }),
      enabled: false,
    },
    {
      desc: "another CNI plugin only",
      text: JSON.stringify({ plugins: [{ type: "bridge" }] }),
      enabled: false,
    },
    { desc: "text that is not JSON", text: "{", enabled: false },
  ];
  it("parseFloatingIpSwitch() marks text that is not JSON unreadable, so the agent keeps its state", () => {
    expect(parseFloatingIpSwitch("{", "/x").readable).toBe(false);
    expect(parseFloatingIpSwitch("{}", "/x").readable).toBeUndefined();
  });
  for (const { desc, text, enabled } of cases) {
    it(`parseFloatingIpSwitch() reads ${desc} as ${enabled ? "on" : "off"}`, () => {
      const state = parseFloatingIpSwitch(text, "/etc/cni/net.d/10-calico.conflist");
      expect(state.enabled).toBe(enabled);
      expect(state.source).toContain("/etc/cni/net.d/10-calico.conflist");
    });
  }
});
