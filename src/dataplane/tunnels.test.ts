// The Tunnels conformance suite on the fake (the real kernel's run is
// test/integration/vxlan.test.ts).
import { FakeTunnels } from "../../test/support/fake-tunnels.js";
import { tunnelsConformance } from "../../test/support/tunnels-conformance.js";

const tunnels = new FakeTunnels();
tunnelsConformance("FakeTunnels", () => ({
  tunnels,
  local: { 4: "192.168.201.11", 6: "fd00:201::11" },
  otherLocal4: "192.168.201.111",
  remove: async (kind, _family, address) => tunnels.remove(kind, address),
}));
