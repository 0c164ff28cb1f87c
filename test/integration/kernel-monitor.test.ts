// LinuxKernelMonitor against the kernel, in the run's throwaway node
// namespace: `nft -j monitor` and `ip -o monitor` tell what LinuxNft and
// LinuxRoutes (and someone behind buoy's back) change.
import { afterAll } from "vitest";
import { LinuxKernelMonitor } from "../../src/dataplane/shell/kernel-monitor.js";
import { LinuxNft } from "../../src/dataplane/shell/nft.js";
import { LinuxRoutes } from "../../src/dataplane/shell/linux-routes.js";
import { NFT_FAMILY, NFT_TABLE } from "../../src/dataplane/nft-script.js";
import { kernelMonitorConformance } from "../support/kernel-monitor-conformance.js";
import { must, runPrefix } from "../support/harness.js";

const LINK = `${runPrefix().slice(0, 9)}-km`;
const SPARE = `${runPrefix().slice(0, 9)}-kx`;
must(["ip", "link", "add", LINK, "type", "veth", "peer", "name", `${LINK}p`]);
must(["ip", "link", "set", LINK, "up"]);
must(["ip", "link", "set", `${LINK}p`, "up"]);

afterAll(() => {
  must(["ip", "link", "del", LINK]);
});

kernelMonitorConformance("the kernel (nft -j monitor, ip -o monitor)", async () => ({
  monitor: new LinuxKernelMonitor(),
  nft: new LinuxNft(),
  routes: new LinuxRoutes(),
  link: LINK,
  spareLink: SPARE,
  addLink: async (name) => {
    must(["ip", "link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  },
  removeLink: async (name) => {
    must(["ip", "link", "del", name]);
  },
  deleteTranslation: async (family, floating) => {
    must([
      "nft",
      "delete",
      "element",
      NFT_FAMILY[family],
      NFT_TABLE,
      "fip_dnat",
      `{ ${floating} }`,
    ]);
  },
  waitMs: 3000,
}));
