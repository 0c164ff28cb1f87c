// The CNI error: the spec's codes, and buoy's own from 100 up. Only cni/ uses it;
// the entry point turns any other error into one with toCniError() (cni/plugin.ts).

export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  floatingIpRefused: 100,
  ipamExhausted: 101,
  checkFailed: 102,
  internal: 999,
} as const;

export class CniError extends Error {
  override readonly name = "CniError";
  constructor(
    readonly code: number,
    message: string,
    readonly details = "",
  ) {
    super(message);
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}
