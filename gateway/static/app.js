// The web page: choose or drop files and each is read at once, one after the other, its pages
// shown as the gateway streams them. No framework, no build step: ES modules served as they are.

import { apiKey, languages, readPages, setApiKey } from "./api.js";
import { explain } from "./messages.js";
import { DocumentView } from "./view.js";

const form = document.getElementById("upload");
const filesInput = document.getElementById("files");
const dropZone = document.getElementById("drop-zone");
const langSelect = document.getElementById("lang");
const langHint = document.getElementById("lang-hint");
const rotateSelect = document.getElementById("rotate");
const deskewBox = document.getElementById("deskew");
const keyInput = document.getElementById("api-key");
const status = document.getElementById("status");
const results = document.getElementById("results");

/** Tell everyone (the status line is a polite live region) what just happened. */
function announce(message) {
  status.textContent = message;
}

// --- options ---------------------------------------------------------------------------------

const languageNames = (() => {
  try {
    return new Intl.DisplayNames([navigator.language || "en", "en"], { type: "language" });
  } catch {
    return null;
  }
})();

/** "German (deu)" for "deu"; the code alone when the browser knows no name for it. */
function languageLabel(code) {
  let name = null;
  try {
    name = languageNames && languageNames.of(code);
  } catch {
    // Not a BCP 47 code (e.g. Tesseract's "chi_sim"): the code says it.
  }
  return name && name !== code ? `${name} (${code})` : code;
}

async function loadLanguages() {
  try {
    const codes = await languages();
    if (!codes.length) {
      return; // nothing better than the default choice
    }
    const chosen = langSelect.value;
    langSelect.replaceChildren(
      ...codes.map((code) => {
        const option = document.createElement("option");
        option.value = code;
        option.textContent = languageLabel(code);
        return option;
      }),
    );
    langSelect.value = codes.includes(chosen) ? chosen : codes.includes("eng") ? "eng" : codes[0];
    langHint.textContent = `${codes.length} installed on the reading service.`;
  } catch (error) {
    langHint.textContent =
      error.code === "unauthorized"
        ? "Enter the API key to see every installed language."
        : `The installed languages could not be listed. ${explain(error)}`;
  }
}

function currentOptions() {
  return { lang: langSelect.value, rotate: rotateSelect.value, deskew: deskewBox.checked };
}

keyInput.value = apiKey();
keyInput.addEventListener("change", () => {
  setApiKey(keyInput.value.trim());
  loadLanguages();
});

// --- files -----------------------------------------------------------------------------------

let queue = Promise.resolve();
let fileNumber = 0;
let waiting = 0;

async function readFile(view) {
  waiting -= 1;
  const more = waiting > 0 ? ` (${waiting} more waiting)` : "";
  announce(`Reading ${view.file.name}…${more}`);
  view.started();
  try {
    for await (const entry of readPages(view.file, view.options)) {
      if ("summary" in entry) {
        view.finish(entry.summary);
      } else {
        view.addPage(entry);
      }
    }
  } catch (error) {
    view.fail(error);
  }
}

/** Show every file at once, then read them one after the other (each one's pages in parallel). */
function enqueue(files) {
  const options = currentOptions();
  for (const file of files) {
    fileNumber += 1;
    waiting += 1;
    const view = new DocumentView(file, options, fileNumber, announce);
    results.append(view.element);
    queue = queue.then(() => readFile(view));
  }
}

form.addEventListener("submit", (event) => event.preventDefault());

// Choosing starts the upload: no extra click.
filesInput.addEventListener("change", () => {
  enqueue([...filesInput.files]);
  filesInput.value = "";
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  enqueue([...event.dataTransfer.files]);
});
// A file dropped beside the zone would make the browser leave this page to show it.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (event) => event.preventDefault());
}

loadLanguages();
