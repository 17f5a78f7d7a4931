// The one error type of the CouchDB dev cluster, shared by every module here (node-process, mesh, admin-api,
// cluster). Its lowercase `code` is stable: the admin API answers `{"error":{"code","message"}}` with it and with
// `status` as the HTTP status, so the wire format of a failure is decided where the failure is raised.
// cluster.mjs re-exports it; import it from there.

/** An error with a stable lowercase code and the HTTP status the admin API answers with. */
export class CouchClusterError extends Error {
  constructor(code, message, status = 500) {
    super(message);
    this.name = 'CouchClusterError';
    this.code = code;
    this.status = status;
  }
}
