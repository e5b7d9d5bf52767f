// Calls to the gateway's API from this page: the same origin, the API key (if any) in its header.

const KEY_HEADER = "X-API-Key";
const KEY_STORAGE = "ocr.apiKey";

/** The path prefix the gateway is served under ("" at the root), from the page's <body>. */
const ROOT = document.body.dataset.root || "";

/** An error answer of the gateway: its stable `code`, message, status and request id. */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} status
   * @param {string|null} requestId
   * @param {number|null} retryAfter
   */
  constructor(code, message, status, requestId = null, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

/** The API key kept for this tab ("" when none). */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

/** Keep `key` for this tab only (sessionStorage), or forget it when empty. */
export function setApiKey(key) {
  if (key) {
    sessionStorage.setItem(KEY_STORAGE, key);
  } else {
    sessionStorage.removeItem(KEY_STORAGE);
  }
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, [KEY_HEADER]: key } : extra;
}

/** The ApiError of a failed answer, read from its JSON error body when it has one. */
async function failure(response) {
  const requestId = response.headers.get("X-Request-ID");
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") || "", 10) || null;
  let code = `http_${response.status}`;
  let message = response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) {
      ({ code, message } = body.error);
    }
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return new ApiError(code, message, response.status, requestId, retryAfter);
}

/** The languages the model can read. */
export async function languages() {
  const response = await fetch(`${ROOT}/gateway/languages`, { headers: headers() });
  if (!response.ok) {
    throw await failure(response);
  }
  const body = await response.json();
  return body.languages;
}

/**
 * The multipart form reading `file` with `options` ({lang, rotate, deskew}) in `format`.
 * @param {File} file
 * @param {{lang: string, rotate: string, deskew: boolean}} options
 * @param {string} format
 */
function ocrForm(file, options, format) {
  const form = new FormData();
  form.append("image_file", file, file.name);
  form.append("lang", options.lang);
  form.append("rotate", options.rotate);
  form.append("deskew", String(options.deskew));
  form.append("format", format);
  return form;
}

/**
 * Read `file` page by page: yields each NDJSON line (a page, or the closing summary) as soon as
 * the gateway sends it; each page carries `preview`, the image its word boxes lie on.
 * @param {File} file
 * @param {{lang: string, rotate: string, deskew: boolean}} options
 * @param {AbortSignal} [signal]
 */
export async function* readPages(file, options, signal) {
  const form = ocrForm(file, options, "ndjson");
  form.append("preview", "true");
  const response = await fetch(`${ROOT}/gateway/ocr`, {
    method: "POST",
    body: form,
    headers: headers({ Accept: "application/x-ndjson" }),
    signal,
  });
  if (!response.ok) {
    throw await failure(response);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let summarised = false;
  try {
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal && signal.aborted) {
          throw error;
        }
        throw new ApiError("cut_off", String(error), 0);
      }
      if (chunk.done) {
        break;
      }
      buffer += chunk.value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 1);
        if (line.trim()) {
          const entry = JSON.parse(line);
          summarised = summarised || "summary" in entry;
          yield entry;
        }
      }
    }
  } finally {
    reader.releaseLock();
  }
  if (!summarised) {
    throw new ApiError("cut_off", "the answer ended before its summary", 0);
  }
}

/**
 * `file` read again as a download in `format` (text, hocr, alto, tsv, pdf), with its name.
 * @param {File} file
 * @param {{lang: string, rotate: string, deskew: boolean}} options
 * @param {string} format
 * @param {string} fallbackName the name when the gateway sends none
 * @returns {Promise<{blob: Blob, name: string}>}
 */
export async function download(file, options, format, fallbackName) {
  const response = await fetch(`${ROOT}/gateway/ocr`, {
    method: "POST",
    body: ocrForm(file, options, format),
    headers: headers(),
  });
  if (!response.ok) {
    throw await failure(response);
  }
  const blob = await response.blob();
  const name = attachmentName(response.headers.get("Content-Disposition")) || fallbackName;
  return { blob, name };
}

/** The file name a Content-Disposition header gives (RFC 6266: `filename*` first), or null. */
function attachmentName(header) {
  if (!header) {
    return null;
  }
  const extended = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]);
    } catch {
      // Malformed: the plain name below will do.
    }
  }
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : null;
}
