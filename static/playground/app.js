// The playground page: keeps the websocket following the session, whatever happens to it.
//
// On every (re)connect the page tells the server where each streaming pane stands (its last
// sequence number) and the last turn it knows of; the server replays from there, then
// follows live. The htmx websocket extension reconnects by itself only after some close
// codes; every other close is retried here. Also: Ctrl/Cmd+Enter sends, panes can be
// removed, and the elapsed time of streaming panes ticks.
(function () {
  "use strict";

  function followMessage() {
    var control = document.getElementById("live-control");
    var responses = {};
    document.querySelectorAll("article[data-active]").forEach(function (article) {
      var status = document.getElementById("response-" + article.dataset.response + "-status");
      responses[article.dataset.response] = status ? Number(status.dataset.seq || 0) : 0;
    });
    return JSON.stringify({
      type: "follow",
      control: control ? control.dataset.control || "0-0" : "0-0",
      turn: control ? Number(control.dataset.turn || 0) : 0,
      response: control ? Number(control.dataset.response || 0) : 0,
      responses: responses,
    });
  }

  function setConnection(text) {
    var el = document.getElementById("connection");
    if (el) el.textContent = text;
  }

  // The page acknowledges the messages it has swapped in (at most every 100 ms): the server
  // sends no more than about a megabyte ahead of what the page has read.
  var received = 0, acked = 0, ackTimer = null;
  function acknowledge(socket) {
    if (ackTimer !== null) return;
    ackTimer = setTimeout(function () {
      ackTimer = null;
      if (received > acked) {
        acked = received;
        socket.send(JSON.stringify({ type: "ack", n: received }));
      }
    }, 100);
  }

  // A socket that closes soon after it opened (the server cannot follow yet: Redis away)
  // is tried again later each time; one that stayed open a while starts over.
  var retries = 0, openedAt = 0;
  var away = 0; // closes in a row because the database did not answer
  document.addEventListener("htmx:wsOpen", function (evt) {
    openedAt = Date.now();
    received = acked = 0;  // counted per socket
    if (ackTimer !== null) { clearTimeout(ackTimer); ackTimer = null; }
    setConnection("");
    evt.detail.socketWrapper.send(followMessage());
  });

  document.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail.event.code;
    if (code === 4404 || code === 4403) { setConnection("You no longer have access to this session."); return; }
    if (code === 4409) {
      setConnection("This page stopped following its answers: you have too many playground pages open. Close some, then reload this one.");
      return;
    }
    if (code === 4503) { // the database did not answer (playground/database_away.py)
      setConnection("The playground cannot reach its database just now; trying again…");
      var wait = Math.min(1000 * Math.pow(2, away++), 8000) * (0.5 + Math.random() / 2);
      setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, wait);
      return;
    }
    away = 0;
    setConnection("Reconnecting…");
    if ([1006, 1011, 1012, 1013].indexOf(code) >= 0) return; // the extension retries these
    if (openedAt && Date.now() - openedAt > 10000) retries = 0;
    var delay = Math.min(1000 * Math.pow(2, retries++), 10000) * (0.5 + Math.random() / 2);
    setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, delay);
  });

  // After a finished answer replaces its streaming article, htmx processes nothing inside
  // it (panes carry hx-disable); keep the view pinned to the bottom while it streams.
  document.addEventListener("htmx:wsAfterMessage", function (evt) {
    received++;
    away = 0;
    acknowledge(evt.detail.socketWrapper);
    document.querySelectorAll("details.reasoning[hidden]").forEach(function (details) {
      if (details.querySelector(".reasoning-text").textContent) details.hidden = false;
    });
    document.querySelectorAll(".history").forEach(function (history) {
      if (history.dataset.pinned !== "0") history.scrollTop = history.scrollHeight;
    });
  });
  document.addEventListener("scroll", function (evt) {
    var el = evt.target;
    if (!(el instanceof Element) || !el.classList.contains("history")) return;
    el.dataset.pinned = el.scrollHeight - el.scrollTop - el.clientHeight < 40 ? "1" : "0";
  }, true);

  // Ctrl/Cmd+Enter sends.
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey) && evt.target.closest("#compose")) {
      evt.preventDefault();
      document.getElementById("compose").requestSubmit();
    }
  });

  // A sent prompt is cleared only once the server accepted it; on errors it stays.
  document.addEventListener("turn-sent", function () {
    var prompt = document.getElementById("prompt");
    if (prompt) prompt.value = "";
    // Images, videos and recordings go with one turn; tool definitions stay for the next.
    var once = ["images", "image_urls", "videos", "video_urls", "video_frames", "audios", "audio_urls"];
    once.forEach(function (name) {
      document.querySelectorAll("#compose [name=" + name + "]").forEach(function (el) {
        el.value = "";
      });
    });
  });

  // The compose form's file inputs (images, videos, a video's frames, recordings).
  var FILE_FIELDS = ["images", "videos", "video_frames", "audios"];

  // The compose form goes as multipart only when it carries files; otherwise it is
  // urlencoded, which the server parses ten times faster (1.3 ms against 0.1 ms for four
  // panes). htmx reads hx-encoding when the request starts, after htmx:confirm.
  function hasFiles(form) {
    return Array.prototype.some.call(form.querySelectorAll("input[type=file]"), function (el) {
      return el.files && el.files.length > 0;
    });
  }
  document.addEventListener("htmx:confirm", function (evt) {
    var form = evt.detail.elt;
    if (!form || form.id !== "compose") return;
    if (hasFiles(form)) form.setAttribute("hx-encoding", "multipart/form-data");
    else form.removeAttribute("hx-encoding");
  });
  document.addEventListener("htmx:configRequest", function (evt) {
    var form = evt.detail.elt;
    if (form && form.id === "compose" && !form.hasAttribute("hx-encoding")) {
      FILE_FIELDS.forEach(function (name) {
        delete evt.detail.parameters[name]; // an empty file input, not text
      });
    }
  });

  // A Send too large for the server (playground/body_limit.py) is refused with a sentence.
  document.addEventListener("htmx:responseError", function (evt) {
    var errors = document.getElementById("compose-errors");
    if (evt.detail.xhr.status === 413 && errors && evt.detail.elt.id === "compose") {
      errors.textContent = evt.detail.xhr.responseText;
    }
  });

  // The database did not answer (playground/database_away.py): a 503 whose text is a
  // sentence. The composer's requests show it in the composer's errors, and what was typed
  // stays; others at the top of the page. The next request that succeeds takes it away.
  function awayBox(elt) {
    var errors = document.getElementById("compose-errors");
    if (errors && elt && elt.closest && elt.closest("#compose")) return errors;
    var box = document.getElementById("database-away");
    if (!box) {
      box = document.createElement("p");
      box.id = "database-away";
      box.className = "notice error";
      box.setAttribute("role", "alert");
      var main = document.querySelector("main") || document.body;
      main.insertBefore(box, main.firstChild);
    }
    return box;
  }
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr.status !== 503 || !/^text\/plain/.test(xhr.getResponseHeader("Content-Type") || "")) return;
    var box = awayBox(evt.detail.elt);
    box.textContent = xhr.responseText;
    box.dataset.databaseAway = "1";
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (!evt.detail.successful) return;
    document.querySelectorAll("[data-database-away]").forEach(function (box) {
      delete box.dataset.databaseAway;
      if (box.id === "database-away") box.remove();
      else box.textContent = "";
    });
  });

  // The composer's estimate counts the picked files (images, videos, frames, recordings)
  // instead of uploading them on every key pressed (playground/views/estimate.py).
  document.addEventListener("htmx:configRequest", function (evt) {
    if (!evt.detail.elt || evt.detail.elt.id !== "estimate") return;
    FILE_FIELDS.forEach(function (name) {
      delete evt.detail.parameters[name];
      var input = document.querySelector("#compose input[type=file][name=" + name + "]");
      var picked = input && input.files ? input.files.length : 0;
      evt.detail.parameters[(name === "images" ? "image" : name) + "_files"] = String(picked);
    });
  });
  // It is asked again when a pane is added, removed or gets its model's parameters (no
  // input or change event says so); never for the answers streaming into the panes.
  function panesChanged() {
    var estimate = document.getElementById("estimate");
    if (estimate) htmx.trigger(estimate, "panes-changed");
  }
  document.addEventListener("htmx:afterSettle", function (evt) {
    var el = evt.target;
    if (el && (el.id === "panes" || (el.classList && el.classList.contains("params")))) panesChanged();
  });

  // A pane is named after its model.
  document.addEventListener("change", function (evt) {
    var select = evt.target;
    if (select.matches && select.matches("select[aria-label=Model]")) {
      var pane = select.closest("section.pane");
      pane.setAttribute("aria-label", select.options[select.selectedIndex].text);
    }
  });

  // Choosing another model re-renders that pane's parameters. What the person typed while
  // that request was on its way is put back into the new fields, never lost.
  var sentParams = new WeakMap();
  var pendingEdits = new Map();
  function paramValues(container) {
    var values = {};
    container.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (el) {
      values[el.name] = el.value;
    });
    return values;
  }
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var target = evt.detail.target;
    if (target && target.classList && target.classList.contains("params")) {
      sentParams.set(target, paramValues(target));
    }
  });
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || !sentParams.has(target)) return;
    var sent = sentParams.get(target);
    var now = paramValues(target);
    var edited = {};
    Object.keys(now).forEach(function (name) {
      if (now[name] !== sent[name]) edited[name] = now[name];
    });
    if (Object.keys(edited).length) pendingEdits.set(target.id, { old: target, edited: edited });
  });
  function restoreEdits() {
    pendingEdits.forEach(function (pending, id) {
      var fresh = document.getElementById(id);
      if (!fresh || fresh === pending.old) return; // not swapped yet
      pendingEdits.delete(id);
      Object.keys(pending.edited).forEach(function (name) {
        var field = fresh.querySelector("[name='" + name + "']");
        if (field) field.value = pending.edited[name];
      });
    });
  }
  // A pane's Parameters opened while its new fields were on their way stays open.
  var openMore = new Set();
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var target = evt.detail.target;
    if (!target || !target.classList || !target.classList.contains("params")) return;
    var more = target.querySelector("details.more");
    if (more && more.open) openMore.add(target.id);
  });
  document.addEventListener("htmx:afterSwap", function () {
    openMore.forEach(function (id) {
      var more = document.querySelector("#" + id + " details.more");
      if (more) more.open = true;
    });
    openMore.clear();
  });
  document.addEventListener("htmx:afterSwap", restoreEdits);
  document.addEventListener("htmx:afterSettle", restoreEdits);

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-remove-pane]");
    if (!button) return;
    if (document.querySelectorAll("section.pane").length > 1) {
      button.closest("section.pane").remove();
      panesChanged();
    }
  });

  // Steering from an answer (playground/views/steer.py). The panes' histories take no htmx
  // attributes (hx-disable), so their buttons post from here; htmx swaps what comes back.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-steer]");
    if (!button) return;
    var url = button.dataset.steer;
    if (button.dataset.onlyPane) url += (url.indexOf("?") < 0 ? "?" : "&") + "only=1";
    htmx.ajax("POST", url, { source: "#compose", swap: "none" });
  });
  function askOnly(position) {
    document.querySelectorAll("section.pane").forEach(function (pane) {
      var box = pane.querySelector("input[name$='-ask']");
      if (box) box.checked = pane.dataset.position === String(position);
    });
    panesChanged();
  }
  document.addEventListener("ask-only", function (evt) { askOnly(evt.detail.position); });
  // Continue a stopped answer: the next prompt goes to that pane only.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-continue]");
    if (!button) return;
    askOnly(button.dataset.continue);
    var prompt = document.getElementById("prompt");
    if (prompt && !prompt.value.trim()) prompt.value = "Continue from exactly where you stopped.";
    if (prompt) prompt.focus();
  });
  document.addEventListener("policy-changed", function (evt) {
    var form = document.getElementById("compose");
    if (form) form.dataset.policy = evt.detail.policy;
  });

  // "Same parameters for every pane": a parameter edited in any pane is copied to the
  // same-named parameter of the others; switching it on, or new fields in a pane, take the
  // first pane's. (Send does the same on the server from the first pane, compose.py.)
  function sameParams() {
    var toggle = document.querySelector("#compose [name=same_params]");
    return Boolean(toggle && toggle.checked);
  }
  function paramName(el) {
    var match = /^pane-\d+-p-(.+)$/.exec(el.name || "");
    return match ? match[1] : null;
  }
  function copyParam(from) {
    var name = paramName(from);
    if (!name) return;
    document.querySelectorAll("#panes .params [name*='-p-']").forEach(function (el) {
      if (el !== from && paramName(el) === name && el.value !== from.value) el.value = from.value;
    });
  }
  function copyFirstPane() {
    var first = document.querySelector("#panes section.pane .params");
    if (first) first.querySelectorAll("[name*='-p-']").forEach(copyParam);
  }
  ["input", "change"].forEach(function (type) {
    document.addEventListener(type, function (evt) {
      var el = evt.target;
      if (el.name === "same_params" && el.checked) copyFirstPane();
      else if (sameParams() && el.closest && el.closest("#panes .params")) copyParam(el);
    });
  });
  document.addEventListener("htmx:afterSettle", function (evt) {
    var el = evt.target;
    if (sameParams() && el && (el.id === "panes" || (el.classList && el.classList.contains("params")))) copyFirstPane();
  });

  // Copy link (the Sets page).
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest("[data-copy]");
    if (!button) return;
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      button.textContent = "Copied";
    }, function () {
      var input = button.parentElement.querySelector("input");
      if (input) input.select(); // the browser refused: the person copies it themselves
    });
  });

  // The Share panel: copy a new link's URL (shown once), close the panel.
  document.addEventListener("click", function (evt) {
    var copy = evt.target.closest && evt.target.closest("[data-copy-field]");
    if (copy) {
      var field = document.querySelector(copy.dataset.copyField);
      field.select();
      var done = function () { copy.textContent = "Copied"; };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(done);
      else if (document.execCommand("copy")) done();
    }
    var close = evt.target.closest && evt.target.closest("[data-close-share]");
    if (close) {
      var empty = document.createElement("div");
      empty.id = "share-panel";
      empty.hidden = true;
      close.closest("#share-panel").replaceWith(empty);
    }
  });

  // Elapsed time of streaming panes, between updates from the server.
  var seen = new Map();
  setInterval(function () {
    document.querySelectorAll("article[data-active] .status[data-elapsed]").forEach(function (status) {
      var key = status.id + ":" + status.dataset.elapsed;
      if (!seen.has(key)) seen.set(key, Date.now());
      var span = status.querySelector(".elapsed");
      if (!span) { span = document.createElement("span"); span.className = "elapsed"; status.appendChild(span); }
      var ms = Number(status.dataset.elapsed) + (Date.now() - seen.get(key));
      span.textContent = " · " + (ms / 1000).toFixed(1) + " s elapsed";
    });
    if (seen.size > 5000) seen.clear();
  }, 250);
})();

// The sidebar's sessions (templates/playground/_sessions.html): renaming in place (Enter
// saves, Escape gives up), Escape in the search box clears it and brings the list back,
// and the undo notice goes when its window has passed.
(function () {
  "use strict";

  document.addEventListener("keydown", function (evt) {
    var target = evt.target;
    if (!(target instanceof Element)) return;
    var rename = target.closest(".rename");
    if (rename && target.name === "title") {
      if (evt.key === "Enter") { evt.preventDefault(); rename.querySelector("[data-save]").click(); }
      if (evt.key === "Escape") { evt.preventDefault(); rename.querySelector("[data-cancel]").click(); }
      return;
    }
    if (target.id === "session-search" && evt.key === "Escape") {
      evt.preventDefault();
      target.value = "";
      htmx.trigger(target, "search");
    }
  });

  // A field that appears for renaming gets the cursor, its text selected.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var field = evt.target.querySelector && evt.target.querySelector(".rename input[name=title]");
    if (field) { field.focus(); field.select(); }
    armNotice();
  });

  // An undo that comes too late is a 404 with a sentence: show the sentence.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.xhr.status === 404 && evt.detail.elt.hasAttribute("data-undo")) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });

  var timer = null;
  function armNotice() {
    var notice = document.getElementById("session-notice");
    if (!notice || !notice.dataset.expires || notice.dataset.armed) return;
    notice.dataset.armed = "1";
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () {
      if (notice.isConnected) { notice.textContent = ""; delete notice.dataset.expires; }
    }, Number(notice.dataset.expires) * 1000);
  }
  document.addEventListener("DOMContentLoaded", armNotice);
})();
