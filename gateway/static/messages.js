// What each error code of the gateway (README "Limits and errors", gateway/errors.py) means to a
// person using this page, in plain words. A unit test holds this table to the gateway's codes.

/** @type {Record<string, string>} */
export const SENTENCES = {
  bad_request: "The upload arrived damaged. Please choose the file again.",
  unauthorized:
    "This gateway needs an API key, and the key given is missing or wrong. " +
    "Enter the key you were given under “API key”, then choose the file again.",
  too_many_auth_failures:
    "Too many wrong API keys were tried from this computer. " +
    "Wait a minute, check the key, then try again.",
  rate_limited: "You have sent many files in a short time. Please wait a little, then try again.",
  not_found: "The gateway does not know this address. Reload the page and try again.",
  method_not_allowed: "The gateway does not know this request. Reload the page and try again.",
  not_acceptable: "The gateway cannot answer in the format this page asked for. Reload the page.",
  validation_error:
    "One of the options is not valid for the gateway. Reload the page and try again.",
  request_timeout:
    "The file took too long to arrive. Check your connection and choose the file again.",
  payload_too_large: "The file is too large for this gateway. Try a smaller or compressed file.",
  too_many_pages:
    "The document has more pages than this gateway reads at once. Split it into smaller parts.",
  unsupported_media_type:
    "This kind of file cannot be read. Use a PDF or an image: PNG, JPEG, TIFF, WebP, BMP or GIF.",
  empty_file: "The file is empty.",
  too_many_files: "Only one file can be sent at a time.",
  unreadable_document:
    "The document could not be opened: it may be damaged, or not really a PDF or TIFF.",
  encrypted_document:
    "The PDF is protected by a password. Save a copy without the password and try again.",
  unreadable_page: "This page could not be taken out of the document: it may be damaged.",
  invalid_argument:
    "The page could not be read: the image may be damaged or too large, or the language " +
    "chosen is not installed.",
  model_overloaded: "The reading service is busy right now. Please try again in a moment.",
  gateway_busy: "The gateway is receiving many files right now. Please try again in a moment.",
  internal_error:
    "Something went wrong inside the gateway. Please try again; if it keeps happening, " +
    "tell whoever runs it.",
  model_not_found:
    "The reading service is not set up as the gateway expects. Please tell whoever runs it.",
  bad_model_response:
    "The reading service answered something unexpected. Please try again, or tell whoever " +
    "runs it.",
  upstream_error:
    "The reading service failed unexpectedly. Please try again, or tell whoever runs it.",
  model_unavailable:
    "The reading service cannot be reached right now: it may be starting. " +
    "Please try again in a minute.",
  not_ready: "The reading service is not ready yet. Please try again in a minute.",
  model_timeout:
    "Reading took too long. Try fewer pages, a smaller image, or a lower resolution.",
};

const UNREACHABLE =
  "The gateway could not be reached. Check your connection, or whether the service is running.";
const CUT_OFF = "The answer was cut off before every page arrived. Please try again.";

/**
 * The sentence for an error of the gateway (`{code, message}`), a failed fetch (`TypeError`) or
 * an answer cut short, with the wait the gateway asked for when it gave one.
 * @param {{code?: string, message?: string, retryAfter?: number|null}} error
 * @returns {string}
 */
export function explain(error) {
  if (error instanceof TypeError) {
    return UNREACHABLE;
  }
  if (error.code === "cut_off") {
    return CUT_OFF;
  }
  const sentence = (error.code && SENTENCES[error.code]) || "Something went wrong.";
  if (error.retryAfter) {
    const seconds = error.retryAfter === 1 ? "1 second" : `${error.retryAfter} seconds`;
    return `${sentence} The gateway asks to wait ${seconds}.`;
  }
  return sentence;
}
