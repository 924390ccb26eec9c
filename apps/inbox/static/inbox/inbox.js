/* Deskpilot inbox: keyboard shortcuts, queue selection, inserting knowledge passages.
 * Progressive enhancement only: every action is a form or a link that works without it.
 * Shortcut buttons are marked with data-shortcut="<key>"; the key clicks (or focuses) them.
 */
(function () {
  "use strict";

  var selectedId = null;

  function $(selector) {
    return document.querySelector(selector);
  }
  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#queue-rows tr[data-ticket-id]"));
  }
  function isTyping(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function toast(text) {
    var box = $("#shortcut-status");
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    window.clearTimeout(toast.timer);
    toast.timer = window.setTimeout(function () {
      box.hidden = true;
    }, 2500);
  }

  function select(row) {
    rows().forEach(function (other) {
      other.classList.remove("selected");
      other.removeAttribute("aria-selected");
    });
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    selectedId = row.dataset.ticketId;
    row.scrollIntoView({ block: "nearest" });
  }

  function reselect() {
    var all = rows();
    if (!all.length) return;
    var match = all.filter(function (row) {
      return row.dataset.ticketId === selectedId;
    })[0];
    if (match) select(match);
  }

  function move(delta) {
    var all = rows();
    if (all.length) {
      var index = all.findIndex(function (row) {
        return row.dataset.ticketId === selectedId;
      });
      var next = index === -1 ? (delta > 0 ? 0 : all.length - 1) : index + delta;
      if (next >= 0 && next < all.length) select(all[next]);
      return;
    }
    var layout = $(".ticket-layout");
    if (!layout) return;
    var href = delta > 0 ? layout.dataset.nextHref : layout.dataset.previousHref;
    if (href) window.location.assign(href);
    else toast(delta > 0 ? "This is the last ticket of the queue page." : "This is the first ticket of the queue page.");
  }

  function openSelected() {
    var row = rows().filter(function (candidate) {
      return candidate.dataset.ticketId === selectedId;
    })[0];
    if (row) window.location.assign(row.dataset.href);
  }

  function press(key, missing) {
    var target = $('[data-shortcut="' + key + '"]');
    if (!target) {
      toast(missing);
      return;
    }
    var details = target.closest("details");
    if (details) details.open = true;
    if (target.tagName === "TEXTAREA" || target.tagName === "INPUT") target.focus();
    else target.click();
  }

  function edit() {
    var target = $('[data-shortcut="e"]');
    if (target) {
      if (target.tagName === "TEXTAREA") target.focus();
      else target.click();
      return;
    }
    var reply = $(".reply-form textarea");
    if (reply) reply.focus();
    else toast("Open a ticket to write a reply.");
  }

  // Ctrl+Enter (Cmd+Enter) in a box marked data-submit-on-ctrl-enter sends its form: the
  // text the agent is looking at, never another version.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    var box = event.target.closest && event.target.closest("[data-submit-on-ctrl-enter]");
    if (!box || !box.form) return;
    event.preventDefault();
    box.form.requestSubmit();
  });

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var help = $("#help");
    if (isTyping(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (help && help.open) return; // the dialog handles Esc itself
    var handled = true;
    switch (event.key) {
      case "?":
        if (help) help.showModal();
        break;
      case "j":
        move(1);
        break;
      case "k":
        move(-1);
        break;
      case "o":
        openSelected();
        break;
      case "Enter":
        if (event.target === document.body && selectedId) openSelected();
        else handled = false;
        break;
      case "a":
        press("a", "No draft to send on this page.");
        break;
      case "e":
        edit();
        break;
      case "r":
        press("r", "No draft to reject on this page.");
        break;
      case "t":
        press("t", "This ticket cannot be taken over.");
        break;
      case "m":
        var picker = $("#macro-picker");
        if (picker) picker.focus();
        else toast("No canned replies here: admins add them in the admin (Macros).");
        break;
      case "/":
        var search = $("#search-input");
        if (search) search.focus();
        break;
      case "u":
        var layout = $(".ticket-layout");
        if (layout) window.location.assign(layout.dataset.queueHref);
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("[data-help-open]")) {
      var help = $("#help");
      if (help) help.showModal();
      return;
    }
    var insert = target.closest("[data-insert]");
    if (insert) {
      insertIntoReply(insert.dataset.insert);
      return;
    }
    var row = target.closest("#queue-rows tr[data-href]");
    if (row && !target.closest("a, button")) {
      select(row);
      window.location.assign(row.dataset.href);
    }
  });

  // Canned replies (macros), filled for this ticket by the server: the picker inserts one
  // into the reply box last used; "/shortcut" then Tab in a reply box expands it.
  var lastBox = null;
  document.addEventListener("focusin", function (event) {
    if (event.target.tagName === "TEXTAREA") lastBox = event.target;
  });
  function macros() {
    var data = $("#macros-data");
    return data ? JSON.parse(data.textContent) : [];
  }
  function macroFor(prefix) {
    var all = macros();
    var exact = all.filter(function (m) { return m.shortcut === prefix; });
    if (exact.length) return exact[0];
    var starting = all.filter(function (m) { return m.shortcut.indexOf(prefix) === 0; });
    return starting.length === 1 ? starting[0] : null;
  }
  // The picker takes "/shortcut", a shortcut's start, "/shortcut · name" (a suggestion) or
  // words of a name.
  function macroPicked(value) {
    var typed = value.trim().toLowerCase();
    var shortcut = /^\/?([a-z0-9_-]+)/.exec(typed);
    var macro = shortcut ? macroFor(shortcut[1]) : null;
    if (macro) return macro;
    var named = macros().filter(function (m) {
      return typed && m.name.toLowerCase().indexOf(typed) !== -1;
    });
    return named.length === 1 ? named[0] : null;
  }
  function pick(input) {
    var macro = macroPicked(input.value);
    if (!macro) {
      if (input.value.trim()) toast("No single canned reply matches \u201c" + input.value.trim() + "\u201d.");
      return;
    }
    input.value = "";
    insertIntoReply(macro.text, lastBox);
  }
  document.addEventListener("change", function (event) {
    if (event.target.id === "macro-picker" && /·/.test(event.target.value)) pick(event.target);
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.id === "macro-picker" && event.key === "Enter") {
      event.preventDefault();
      pick(event.target);
      return;
    }
    if (event.key !== "Tab" || event.shiftKey || event.target.tagName !== "TEXTAREA") return;
    var box = event.target;
    var before = box.value.slice(0, box.selectionStart);
    var typed = /(^|\s)\/([a-z0-9_-]+)$/.exec(before);
    if (!typed) return;
    var macro = macroFor(typed[2]);
    if (!macro) {
      toast("No canned reply starts with /" + typed[2] + ".");
      return;
    }
    event.preventDefault();
    var start = before.length - typed[2].length - 1;
    box.value = box.value.slice(0, start) + macro.text + box.value.slice(box.selectionStart);
    var caret = start + macro.text.length;
    box.setSelectionRange(caret, caret);
    toast("Inserted /" + macro.shortcut + ".");
  });

  // Insert text at a reply box's cursor (the box given, else the reply box), on a line of
  // its own: knowledge passages and links, canned replies.
  function insertIntoReply(text, box) {
    var reply = box || $('[data-shortcut="e"]') || $(".reply-form textarea");
    if (!reply || reply.tagName !== "TEXTAREA") reply = $(".reply-form textarea");
    if (!reply) return;
    var start = reply.selectionStart || reply.value.length;
    var end = reply.selectionEnd || start;
    var before = reply.value.slice(0, start);
    var after = reply.value.slice(end);
    var glue = before && !/\n$/.test(before) ? "\n" : "";
    reply.value = before + glue + text + "\n" + after;
    var caret = (before + glue + text + "\n").length;
    reply.focus();
    reply.setSelectionRange(caret, caret);
    toast("Inserted into the reply.");
  }

  document.addEventListener("htmx:afterSettle", reselect);
  // Pollers ([data-poll]) rest while the tab is hidden. (A trigger filter would need eval,
  // which the Content-Security-Policy forbids.)
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    if (document.hidden && source && source.hasAttribute("data-poll")) {
      event.preventDefault();
    }
  });

  // Drafts as they are written (Server-Sent Events): the one in progress when the page was
  // rendered, and any that start while it is open (a regenerated draft, the next message's).
  // The stream URL carries the position the page was rendered at, so nothing already shown
  // is replayed; on reconnect the browser sends Last-Event-ID. The page reloads when a
  // draft is saved.
  var stream = null;
  function followDraft() {
    var panel = $("[data-draft-stream]");
    if (stream) {
      stream.close();
      stream = null;
    }
    if (!panel || !window.EventSource) return;
    var section = panel.querySelector("[data-draft-live]");
    var live = panel.querySelector(".draft-live");
    stream = new EventSource(panel.dataset.draftStream);
    stream.addEventListener("start", function () {
      live.textContent = "";
      section.hidden = false;
    });
    stream.addEventListener("delta", function (event) {
      section.hidden = false;
      live.textContent += JSON.parse(event.data).text || "";
    });
    stream.addEventListener("reset", function () {
      live.textContent = "";
    });
    stream.addEventListener("final", function () {
      stream.close();
      stream = null;
      window.location.reload();
    });
  }
  document.addEventListener("DOMContentLoaded", followDraft);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target === document.body) followDraft();
  });
})();
