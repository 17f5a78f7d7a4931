// The error class every Replikit rejection is an instance of. The Rust side builds it through the class
// registered at load time (see api.js), so `err instanceof ReplikitError` holds for every failure.

export class ReplikitError extends Error {
  /**
   * @param {string} message
   * @param {{ code?: string, retryable?: boolean, status?: number, endpoint?: string, argument?: string, current?: unknown }} [details]
   */
  constructor(message, details = {}) {
    super(message);
    this.name = 'ReplikitError';
    this.code = details.code ?? 'internal';
    this.retryable = details.retryable ?? false;
    for (const key of ['status', 'endpoint', 'argument', 'current']) {
      if (details[key] !== undefined) this[key] = details[key];
    }
  }
}
