// The one error every datastore port throws when its backend cannot answer: the
// CNI plugin turns it into code 11 (try again later), the agent into not-ready.

/** The store could not be reached or answered with an error (CNI code 11 territory). */
export class DatastoreUnavailableError extends Error {
  override readonly name = "DatastoreUnavailableError";
}
