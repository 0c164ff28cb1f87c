// Records the agent's unit tests start from: the floating pool of
// 203.0.113.0/24 (a disabled pool: floating IPs only).
import type { IpPool } from "../../src/model/records.js";

export const FLOATING_POOL: IpPool = {
  name: "floating",
  cidr: "203.0.113.0/24",
  blockSize: 26,
  disabled: true,
  nodeSelector: "all()",
  natOutgoing: false,
  disableBGPExport: false,
};
