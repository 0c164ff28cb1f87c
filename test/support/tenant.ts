// A tenant as a cluster gives one: a user with its own static token (from
// startKubeApiserver's `users`) bound to a Role in its own namespace, and
// nothing else. The hostile-tenant, identity and least-privilege suites
// attack buoy with the client this returns.
import type { KubeApiserver, KubeClient } from "./kube.js";

export interface RoleRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** Binds `rules` to user `user` in `namespace` (a Role named `role`); resolves to the user's client. */
export async function grantTenant(
  kube: KubeApiserver,
  options: { user: string; namespace: string; role: string; rules: RoleRule[] },
): Promise<KubeClient> {
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${options.namespace}`;
  await kube.admin.json("POST", `${rbac}/roles`, {
    metadata: { name: options.role },
    rules: options.rules,
  });
  await kube.admin.json("POST", `${rbac}/rolebindings`, {
    metadata: { name: options.role },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: options.role },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: options.user }],
  });
  return kube.client({ token: kube.tokens[options.user] ?? "" });
}
