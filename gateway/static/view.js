// One uploaded file on the page: its progress, its pages as they arrive (the page image with a
// box over every word, coloured by confidence, and the text beside it) and its downloads.

import { download } from "./api.js";
import { explain } from "./messages.js";

/** The downloads offered once a file is read: the gateway's `format` values. */
const DOWNLOADS = [
  { format: "text", label: "Text", extension: "txt" },
  { format: "hocr", label: "hOCR", extension: "hocr" },
  { format: "alto", label: "ALTO XML", extension: "alto.xml" },
  { format: "tsv", label: "TSV", extension: "tsv" },
  { format: "pdf", label: "Searchable PDF", extension: "pdf" },
];

/** Confidence classes of the word boxes, highest first: [lowest percent, class]. */
export const CONFIDENCE_CLASSES = [
  [90, "conf-high"],
  [70, "conf-mid"],
  [0, "conf-low"],
];

/**
 * A new element: `attributes` set as attributes (`class` included), `children` appended (text
 * as text nodes: nothing here is ever parsed as HTML).
 * @param {string} tag
 * @param {Record<string, string>} [attributes]
 * @param {Array<Node|string>} [children]
 */
function el(tag, attributes = {}, children = []) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    element.setAttribute(name, value);
  }
  element.append(...children);
  return element;
}

function percent(value) {
  return `${Math.round(value)}%`;
}

/** "840 ms", "2.5 s". */
function duration(milliseconds) {
  return milliseconds < 1000
    ? `${Math.round(milliseconds)} ms`
    : `${(milliseconds / 1000).toFixed(1)} s`;
}

function confidenceClass(confidence) {
  const found = CONFIDENCE_CLASSES.find(([lowest]) => confidence >= lowest);
  return found ? found[1] : "conf-low";
}

/** "scan" of "scan.pdf": the stem downloads are named after. */
function stem(name) {
  const dot = name.lastIndexOf(".");
  return (dot > 0 ? name.slice(0, dot) : name) || "page";
}

/** A failure explained in words, with the gateway's own message and request id below it. */
function errorNote(error, className = "error") {
  const note = el("div", { class: className, role: "alert" }, [el("p", {}, [explain(error)])]);
  const details = [];
  if (error.message && error.code !== "cut_off" && !(error instanceof TypeError)) {
    details.push(`The gateway said: ${error.message}`);
  }
  if (error.requestId) {
    details.push(`Reference: ${error.requestId}`);
  }
  if (details.length) {
    note.append(el("p", { class: "details" }, [details.join(" — ")]));
  }
  return note;
}

export class DocumentView {
  /**
   * @param {File} file
   * @param {{lang: string, rotate: string, deskew: boolean}} options as the file is read
   * @param {number} number this file's number on the page, for unique ids
   * @param {(message: string) => void} announce tells assistive technology what happened
   */
  constructor(file, options, number, announce) {
    this.file = file;
    this.options = options;
    this.id = `doc${number}`;
    this.announce = announce;
    this.pages = new Map();
    this.read = 0;
    this.pageCount = null;

    const headingId = `${this.id}-title`;
    this.progress = el("progress", { "aria-labelledby": `${this.id}-progress` });
    this.progressText = el("span", { id: `${this.id}-progress` }, ["Waiting…"]);
    this.notes = el("div", { class: "notes" });
    this.downloads = el("div", { class: "downloads", hidden: "" });
    this.pageList = el("div", { class: "pages" });
    this.element = el("article", { class: "document", "aria-labelledby": headingId }, [
      el("h2", { id: headingId }, [file.name]),
      el("p", { class: "progress" }, [this.progress, " ", this.progressText]),
      this.notes,
      this.downloads,
      this.pageList,
    ]);
  }

  /** The upload is under way. */
  started() {
    this.progressText.textContent = "Uploading and reading…";
  }

  /** One NDJSON page line: a page read (with its preview) or a page that failed. */
  addPage(entry) {
    this.read += 1;
    this.pageCount = entry.page_count || this.pageCount;
    if (this.pageCount) {
      this.progress.max = this.pageCount;
      this.progress.value = this.read;
      this.progressText.textContent = `${this.read} of ${this.pageCount} pages read`;
    }
    const section = entry.error ? this.failedPage(entry) : this.pageSection(entry);
    // Pages arrive as they are read, not in order: each goes before the first later page.
    const later = [...this.pages.keys()].filter((n) => n > entry.page).sort((a, b) => a - b)[0];
    this.pageList.insertBefore(section, later === undefined ? null : this.pages.get(later));
    this.pages.set(entry.page, section);
  }

  /** The closing summary line: the file is read. */
  finish(summary) {
    const failed = summary.failed_pages.length;
    this.progress.max = summary.page_count;
    this.progress.value = summary.page_count;
    const took = duration(summary.timings.total_ms);
    const pages = summary.page_count === 1 ? "1 page" : `${summary.page_count} pages`;
    let text = `${pages} read in ${took}, mean confidence ${percent(summary.confidence)}`;
    if (failed) {
      text = `${summary.pages_read} of ${pages} read in ${took}; ${failed} could not be read`;
    }
    this.progressText.textContent = text;
    this.element.classList.add("done");
    if (summary.pages_read > 0) {
      this.showDownloads();
    }
    this.announce(`${this.file.name}: ${text}.`);
  }

  /** The whole file failed (or the answer was cut off): say why, in words. */
  fail(error) {
    this.progress.max = 1;
    this.progress.value = 0;
    this.progressText.textContent = "Not read";
    this.element.classList.add("failed");
    this.notes.replaceChildren(errorNote(error));
    this.announce(`${this.file.name} could not be read. ${explain(error)}`);
  }

  failedPage(entry) {
    const headingId = `${this.id}-page${entry.page}`;
    return el("section", { class: "page failed", "aria-labelledby": headingId }, [
      el("h3", { id: headingId }, [this.pageTitle(entry.page)]),
      errorNote(entry.error, "error page-error"),
    ]);
  }

  pageTitle(page) {
    return this.pageCount && this.pageCount > 1 ? `Page ${page} of ${this.pageCount}` : "Page 1";
  }

  pageSection(entry) {
    const headingId = `${this.id}-page${entry.page}`;
    const canvas = el("div", { class: "page-canvas" });
    if (entry.preview) {
      canvas.append(
        el("img", {
          src: entry.preview,
          alt: `Page ${entry.page} of ${this.file.name}, as it was read`,
          width: String(entry.width),
          height: String(entry.height),
        }),
      );
    } else {
      canvas.classList.add("no-image");
      canvas.style.aspectRatio = `${entry.width} / ${entry.height}`;
    }
    canvas.append(this.wordBoxes(entry));

    const facts = [`${entry.width} × ${entry.height} px`];
    if (entry.rotation) {
      facts.push(`turned ${entry.rotation}°`);
    }
    if (entry.skew) {
      facts.push(`straightened ${entry.skew.toFixed(1)}°`);
    }
    const count = entry.words.length === 1 ? "1 word" : `${entry.words.length} words`;
    facts.push(`${count}, mean confidence ${percent(entry.confidence)}`);
    if (entry.source === "pdf") {
      facts.push("text taken from the PDF itself");
    }

    const text = el("pre", { class: "text", tabindex: "0" });
    text.setAttribute("aria-label", `Text of page ${entry.page}`);
    text.textContent = entry.text.trim() || "(no text found)";
    const copy = el("button", { type: "button", class: "copy" }, ["Copy text"]);
    copy.setAttribute("aria-label", `Copy the text of page ${entry.page}`);
    copy.addEventListener("click", () => this.copy(entry, text, copy));

    return el("section", { class: "page", "aria-labelledby": headingId }, [
      el("h3", { id: headingId }, [this.pageTitle(entry.page)]),
      el("div", { class: "page-body" }, [
        el("figure", { class: "page-figure" }, [canvas, el("figcaption", {}, [facts.join(", ")])]),
        el("div", { class: "page-text" }, [el("h4", {}, ["Text"]), text, copy]),
      ]),
    ]);
  }

  /** A box over every word, placed in percent of the page, so it fits the image at any size. */
  wordBoxes(entry) {
    const list = el("div", {
      class: "words",
      role: "list",
      "aria-label": `Words found on page ${entry.page}, each with the engine's confidence`,
    });
    for (const word of entry.words) {
      const label = `${word.text}, ${percent(word.confidence)}`;
      const box = el("span", {
        class: `word ${confidenceClass(word.confidence)}`,
        role: "listitem",
        tabindex: "0",
        "aria-label": label,
        "data-tip": label,
      });
      // CSSOM properties, not a style attribute: the page's CSP allows no inline styles.
      box.style.left = `${(100 * word.left) / entry.width}%`;
      box.style.top = `${(100 * word.top) / entry.height}%`;
      box.style.width = `${(100 * word.width) / entry.width}%`;
      box.style.height = `${(100 * word.height) / entry.height}%`;
      list.append(box);
    }
    return list;
  }

  async copy(entry, text, button) {
    try {
      await navigator.clipboard.writeText(entry.text);
      button.textContent = "Copied";
      this.announce(`The text of page ${entry.page} is copied.`);
    } catch {
      // No clipboard access (permission, older browser): select it for Ctrl+C instead.
      window.getSelection().selectAllChildren(text);
      text.focus();
      this.announce(`The text of page ${entry.page} is selected: press Ctrl+C to copy it.`);
    }
  }

  showDownloads() {
    const items = DOWNLOADS.map((choice) => {
      const button = el("button", { type: "button" }, [choice.label]);
      button.setAttribute("aria-label", `Download ${choice.label} of ${this.file.name}`);
      const item = el("li", {}, [button]);
      button.addEventListener("click", () => this.fetchDownload(choice, item, button));
      return item;
    });
    this.downloads.replaceChildren(
      el("h3", {}, ["Download"]),
      el("p", { class: "hint" }, ["Each is read again with the same options."]),
      el("ul", {}, items),
    );
    this.downloads.hidden = false;
  }

  /** Fetch one download, then offer it as a link (and start saving it at once). */
  async fetchDownload(choice, item, button) {
    button.disabled = true;
    button.textContent = `${choice.label}: preparing…`;
    const fallback = `${stem(this.file.name)}.${choice.extension}`;
    try {
      const { blob, name } = await download(this.file, this.options, choice.format, fallback);
      const link = el("a", { href: URL.createObjectURL(blob), download: name, class: "download" }, [
        `${choice.label}: ${name}`,
      ]);
      item.replaceChildren(link);
      link.focus();
      link.click();
      this.announce(`${choice.label} of ${this.file.name} is ready: ${name}.`);
    } catch (error) {
      button.disabled = false;
      button.textContent = choice.label;
      this.notes.replaceChildren(errorNote(error));
      this.announce(`${choice.label} of ${this.file.name} could not be made. ${explain(error)}`);
    }
  }
}
