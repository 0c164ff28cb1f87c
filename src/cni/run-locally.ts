// The executable doing the CNI work itself: the plugin with the host's real
// ports. Imported by main.ts only when the resident agent did not take the
// request, so that a forwarded call never loads it (ADR 0013).
import { hostname } from "node:os";
import { LinuxPodNetwork } from "../dataplane/shell/linux-pod-network.js";
import { execPlugin } from "./delegate.js";
import { openDatastore } from "./open-datastore.js";
import { runCni, type CniRequest, type CniResponse } from "./plugin.js";

export function runLocally(request: CniRequest): Promise<CniResponse> {
  return runCni(request, {
    openDatastore,
    podNetwork: new LinuxPodNetwork(),
    execPlugin,
    hostname,
    now: () => new Date(),
  });
}
