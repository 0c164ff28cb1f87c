// buoy's Kubernetes API group, named once: the CRDs (install/), the objects the
// Kubernetes datastore reads and writes (kube/), the manifests `buoy apply`
// reads and `buoy get -o yaml` prints (cli/), and buoy's own annotations and
// labels all take it from here.

export const BUOY_API_GROUP = "buoy.dev";
/** The one served version of every buoy CRD. */
export const BUOY_VERSION = "v1";
/** `apiVersion` of buoy's objects: `buoy.dev/v1`. */
export const BUOY_API_VERSION = `${BUOY_API_GROUP}/${BUOY_VERSION}`;
