// The names a runtime or an administrator hands buoy that end up in `ip
// -batch` scripts and in datastore keys: a pod's interface (CNI_IFNAME), a
// container ID, a node's name. Each check returns what is wrong (undefined
// when nothing is), for the caller to raise in its own error type.

/** Linux's IFNAMSIZ less the terminating NUL. */
export const MAX_INTERFACE_NAME_BYTES = 15;
export const MAX_NODE_NAME_CHARS = 253;

/**
 * Linux's rules for an interface name (the kernel's dev_valid_name(), as
 * libcni's ValidateInterfaceName words them): 1 to 15 bytes, not `.` or `..`,
 * no `/`, `:` or whitespace; and, because it reaches `ip -batch` scripts,
 * only ASCII letters, digits, `_`, `.` and `-`.
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name === "") return "interface name is empty";
  if (new TextEncoder().encode(name).length > MAX_INTERFACE_NAME_BYTES) {
    return `interface name is longer than ${MAX_INTERFACE_NAME_BYTES} bytes`;
  }
  if (name === "." || name === "..") return "interface name is . or ..";
  if (/[/:\s]/u.test(name)) return "interface name contains / or : or whitespace";
  // Stricter than the kernel: the name is a word of `ip -batch` scripts, where
  // `#` starts a comment and quotes and backslashes are read (`dev eth0#x`
  // would act on eth0).
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    return "interface name may hold only letters, digits, '_', '.' and '-'";
  }
  return undefined;
}

/** What the CNI spec allows for a container ID: alphanumerics, then also `_`, `.` and `-`. */
export function containerIdProblem(id: string): string | undefined {
  if (id === "") return "container ID is empty";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) {
    return "must be alphanumeric with '_', '.' or '-'";
  }
  return undefined;
}

/**
 * A node's name as Kubernetes requires it, a DNS-1123 subdomain: lower-case
 * letters, digits, `-` and `.`, each dot-separated part starting and ending
 * with a letter or digit, at most 253 characters.
 */
export function nodeNameProblem(name: string): string | undefined {
  if (name === "") return "node name is empty";
  if (name.length > MAX_NODE_NAME_CHARS) {
    return `node name is longer than ${MAX_NODE_NAME_CHARS} characters`;
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name)) {
    return (
      "not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', " +
      "starting and ending with a letter or digit)"
    );
  }
  return undefined;
}
