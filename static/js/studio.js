// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  for (const zone of document.querySelectorAll("[data-dropzone]")) {
    const input = zone.querySelector("input[type=file]");
    const name = zone.querySelector("[data-filename]");
    const show = () => { name.textContent = input.files.length ? input.files[0].name : ""; };
    input.addEventListener("change", show);
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("dragover"); });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.remove("dragover"); });
    }
    zone.addEventListener("drop", (e) => {
      if (e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
    });
  }

  for (const form of document.querySelectorAll("form")) {
    form.addEventListener("submit", (e) => {
      const clicked = e.submitter;
      // A disabled button is left out of the post: carry its name (e.g. "preview") over.
      if (clicked && clicked.name) {
        const carried = document.createElement("input");
        Object.assign(carried, { type: "hidden", name: clicked.name, value: clicked.value });
        form.append(carried);
      }
      const busy = clicked && clicked.dataset.busyLabel ? clicked : form.querySelector("[data-busy-label]");
      for (const button of form.querySelectorAll("[data-busy-label]")) button.disabled = true;
      if (busy) busy.textContent = busy.dataset.busyLabel;
    });
  }

  const backgroundOptions = document.querySelector("[data-background-options]");
  if (backgroundOptions) {
    const form = backgroundOptions.closest("form");
    const sync = () => {
      const chosen = form.querySelector("input[name=background]:checked");
      for (const option of backgroundOptions.querySelectorAll("[data-show-for]")) {
        option.hidden = !chosen || option.dataset.showFor !== chosen.value;
      }
    };
    form.addEventListener("change", sync);
    sync();
  }

  const driverForm = document.querySelector("[data-driver-form]");
  if (driverForm) {
    const sync = () => {
      const chosen = driverForm.querySelector("input[name=driver]:checked");
      for (const set of driverForm.querySelectorAll("fieldset[data-driver]")) {
        set.hidden = chosen && set.dataset.driver !== chosen.value;
      }
    };
    driverForm.addEventListener("change", sync);
    sync();
  }

  const engineOptions = document.querySelector("[data-engine-options]");
  if (engineOptions) {
    const providers = JSON.parse(document.getElementById("engine-providers").textContent);
    const select = engineOptions.querySelector("select[name=engine]");
    const sync = () => {
      for (const options of engineOptions.querySelectorAll("[data-provider]")) {
        options.hidden = providers[select.value] !== options.dataset.provider;
      }
    };
    select.addEventListener("change", sync);
    sync();
  }

  const captionOptions = document.querySelector("[data-caption-options]");
  if (captionOptions) {
    const burn = captionOptions.querySelector("input[name=burn_captions]");
    const styles = captionOptions.querySelector("[data-burn-options]");
    const sync = () => { styles.hidden = !burn.checked; };
    burn.addEventListener("change", sync);
    sync();
  }

  for (const output of document.querySelectorAll("output[data-for]")) {
    const input = document.getElementById(output.dataset.for);
    if (input) input.addEventListener("input", () => { output.textContent = input.value; });
  }

  const listen = document.querySelector("[data-listen]");
  if (listen) {
    const player = document.querySelector("[data-sample-player]");
    const select = document.getElementById("id_voice");
    listen.addEventListener("click", () => {
      player.src = `${listen.dataset.sampleUrl}?voice=${encodeURIComponent(select.value)}`;
      player.play();
    });
  }

  // Inline handlers are refused by the Content-Security-Policy; these replace them.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => { if (!confirm(form.dataset.confirm)) e.preventDefault(); });
  }
  for (const select of document.querySelectorAll("select[data-submit-on-change]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }

  // The script's length as the server counts it: spoken text, SSML tags not included.
  for (const area of document.querySelectorAll("textarea[data-max-chars]")) {
    const limit = Number(area.dataset.maxChars);
    const counter = document.createElement("p");
    counter.className = "help script-counter";
    counter.setAttribute("aria-live", "polite");
    area.insertAdjacentElement("afterend", counter);
    const update = () => {
      const text = /^\s*(<\?xml[^>]*\?>\s*)?<speak[\s>/]/i.test(area.value) ? area.value.replace(/<[^>]*>/g, "") : area.value;
      const count = [...text.replace(/\s+/g, " ").trim()].length;
      counter.textContent = `${count.toLocaleString()} / ${limit.toLocaleString()} characters`;
      counter.classList.toggle("over", count > limit);
    };
    area.addEventListener("input", update);
    update();
  }

  // The voice follows the chosen avatar until the creator picks one themselves.
  const avatarSelect = document.getElementById("id_avatar");
  const voiceSelect = document.getElementById("id_voice");
  // Options for one kind of avatar (a video's loop) show only while that kind is picked.
  if (avatarSelect) {
    const sync = () => {
      const kind = avatarSelect.selectedOptions[0]?.dataset.kind;
      for (const set of document.querySelectorAll("fieldset[data-avatar-kind]")) {
        set.hidden = Boolean(kind) && set.dataset.avatarKind !== kind;
      }
    };
    avatarSelect.addEventListener("change", sync);
    sync();
  }
  if (avatarSelect && voiceSelect) {
    let chosenByHand = false;
    voiceSelect.addEventListener("change", () => { chosenByHand = true; });
    avatarSelect.addEventListener("change", () => {
      const voice = avatarSelect.selectedOptions[0]?.dataset.voice;
      if (voice && !chosenByHand) voiceSelect.value = voice;
    });
  }

  // S3 mode: files go straight to the bucket with a progress bar, then the form names them by
  // file_id, so a large video never passes through the web server. A file the bucket won't
  // take this way (an unusual type) is posted with the form as before.
  const KIND_OF_FIELD = { background_image: "photo", reference_photo: "photo", audio: "audio" };
  const sendToBucket = (credential, file, progress) => new Promise((resolve, reject) => {
    const body = new FormData();
    for (const [name, value] of Object.entries(credential.fields)) body.append(name, value);
    body.append("file", file);
    const request = new XMLHttpRequest();
    request.open("POST", credential.url);
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    request.addEventListener("load", () => (request.status < 300 ? resolve() : reject(request.status)));
    request.addEventListener("error", () => reject(0));
    request.send(body);
  });
  for (const form of document.querySelectorAll("form[data-direct-upload]")) {
    form.addEventListener("submit", async (e) => {
      const inputs = [...form.querySelectorAll("input[type=file]")].filter((input) => input.files.length && !input.disabled);
      if (!inputs.length) return;
      e.preventDefault();
      const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
      const status = document.createElement("p");
      status.className = "help upload-progress";
      status.setAttribute("aria-live", "polite");
      const progress = document.createElement("progress");
      progress.className = "progress";
      progress.max = 100;
      form.querySelector(".actions").before(status, progress);
      for (const input of inputs) {
        const file = input.files[0];
        const kind = KIND_OF_FIELD[input.name] || (file.type.startsWith("video/") ? "video" : "photo");
        const ask = new FormData();
        ask.append("kind", kind);
        ask.append("content_type", file.type);
        ask.append("filename", file.name);
        status.textContent = `Uploading ${file.name}…`;
        progress.value = 0;
        const answer = await fetch(form.dataset.directUpload, {
          method: "POST", body: ask, headers: { "X-CSRFToken": csrf }, credentials: "same-origin",
        });
        if (!answer.ok) continue;  // posted with the form instead
        const credential = await answer.json();
        try {
          await sendToBucket(credential, file, progress);
        } catch {
          status.textContent = `The upload of ${file.name} failed; check your connection and try again.`;
          for (const button of form.querySelectorAll("[data-busy-label]")) button.disabled = false;
          return;
        }
        const named = document.createElement("input");
        Object.assign(named, { type: "hidden", name: `${input.name}_file_id`, value: credential.file_id });
        form.append(named);
        input.disabled = true;  // a disabled input is left out of the post
      }
      status.textContent = "Uploaded; checking…";
      progress.value = 100;
      form.submit();
    });
  }
});
