import { describe, expect, it } from "vitest";
import { parseFloatingIpSwitch } from "./feature-switch.js";

describe("parseFloatingIpSwitch()", () => {
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
