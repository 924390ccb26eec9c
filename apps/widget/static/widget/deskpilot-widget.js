/*! Deskpilot chat widget. Embed with:
 *  <script src="https://support.example.com/static/widget/deskpilot-widget.js"
 *          data-widget-key="wk_..." defer></script>
 * For a signed-in user, add data-user-id, data-user-email, data-user-name and data-user-hash,
 * the hash computed by your server (docs/widget-identity.md); or call
 * window.DeskpilotWidget.identify({userId, userEmail, userName, userHash}) (null: signed out).
 * Plain JavaScript, no dependencies. Renders inside a Shadow DOM so the host page's styles
 * cannot reach it (and its styles cannot leak out). Everything shown is set as text, never
 * as HTML: a message containing markup is displayed as the characters it contains.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.widgetKey || window.__deskpilotWidget) return;
  window.__deskpilotWidget = true;

  var KEY = script.dataset.widgetKey;
  var SCRIPT_URL = new URL(script.src, document.baseURI);
  var API = SCRIPT_URL.origin + "/widget/api/" + encodeURIComponent(KEY);
  var CSS_URL = new URL("deskpilot-widget.css", SCRIPT_URL).href;
  var STORE = "deskpilot:" + KEY;
  var TITLE = script.dataset.title || "Support";
  // Who the visitor is, as the site says: signed by its server (data-user-hash), the visitor
  // is that user; unsigned, these are claims the agent sees as such.
  var identity = identityFrom(script.dataset);
  var FAST_POLL_MS = 1500;
  var FAST_POLL_FOR_MS = 90000;
  var OPEN_POLL_MS = 5000;
  var IDLE_POLL_MS = 20000;

  // --- state kept across page loads (localStorage; the page may forbid it: then memory) -----
  var memory = {};
  function load() {
    try {
      return JSON.parse(window.localStorage.getItem(STORE) || "{}") || {};
    } catch (error) {
      return memory;
    }
  }
  function save() {
    try {
      window.localStorage.setItem(STORE, JSON.stringify(state));
    } catch (error) {
      memory = state;
    }
  }
  var state = load();
  state.ratings = state.ratings || {};

  function identityFrom(source) {
    source = source || {};
    var found = {
      user_id: String(source.userId || ""),
      email: String(source.userEmail || ""),
      name: String(source.userName || ""),
      hash: String(source.userHash || ""),
    };
    return found.user_id || found.email || found.name ? found : null;
  }

  function identityUserId() {
    return identity ? identity.user_id : "";
  }

  // A conversation stays with the user who started it: once someone else is signed in on this
  // browser (or nobody is), the stored one is left and the next message starts another.
  function identityChanged() {
    return Boolean(state.token) && (state.userId || "") !== identityUserId();
  }

  var messages = []; // as the server sent them, in id order
  var lastId = 0;
  var status = "";
  var sending = false;
  var pollTimer = null;
  var fastUntil = 0;
  var unread = 0;
  var drafting = false;
  var following = false;
  // The reply being written, shown as it streams (only drafts on course to be auto-sent reach
  // the visitor); replaced by the stored message once sent, dropped if it was not sent.
  var live = null;
  var livePieces = 0;
  var liveSent = false;
  var streamFor = null; // the customer message id the stream's current run answers

  // --- DOM -------------------------------------------------------------------------------
  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Icons drawn as SVG paths (Material Icons, Apache-2.0): no emoji font needed.
  var ICONS = {
    chat: "M20 2H4c-1.1 0-2 .9-2 2v18l4-4h14c1.1 0 2-.9 2-2V4c0-1.1-.9-2-2-2z",
    up: "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z",
    down: "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z",
  };
  function icon(name) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", ICONS[name]);
    svg.appendChild(path);
    return svg;
  }

  var host = el("div", { id: "deskpilot-widget", "data-deskpilot": "" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("link", { rel: "stylesheet", href: CSS_URL }));

  var launcher = el("button", {
    class: "launcher",
    type: "button",
    "aria-label": "Open the support chat",
    "aria-expanded": "false",
    "aria-controls": "dp-panel",
  });
  launcher.appendChild(icon("chat"));
  var badge = el("span", { class: "badge", hidden: "" });
  launcher.appendChild(badge);

  var panel = el("section", {
    class: "panel",
    id: "dp-panel",
    role: "dialog",
    "aria-modal": "false",
    "aria-labelledby": "dp-title",
    hidden: "",
  });
  var header = el("header", { class: "header" });
  header.appendChild(el("h2", { id: "dp-title" }, TITLE));
  var closeButton = el("button", { class: "close", type: "button", "aria-label": "Close the chat" }, "\u00D7");
  header.appendChild(closeButton);
  panel.appendChild(header);

  var notice = el("p", { class: "notice", role: "status", hidden: "" });
  panel.appendChild(notice);
  var log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  panel.appendChild(log);
  var intro = el("li", { class: "intro" }, "Hi! Ask us anything. An assistant answers right away; a person from our team takes over when needed.");
  log.appendChild(intro);
  var typing = el("li", { class: "typing", hidden: "", "aria-label": "Support is writing a reply" });
  typing.appendChild(el("span", { "aria-hidden": "true" }, "\u2022\u2022\u2022"));
  log.appendChild(typing);

  var errorBox = el("p", { class: "error", role: "alert", hidden: "" });
  panel.appendChild(errorBox);

  var form = el("form", { class: "composer", novalidate: "" });
  var label = el("label", { for: "dp-input", class: "visually-hidden" }, "Your message");
  var input = el("textarea", {
    id: "dp-input",
    rows: "2",
    placeholder: "Type your question\u2026",
    autocomplete: "off",
  });
  var sendButton = el("button", { type: "submit", class: "send" }, "Send");
  form.appendChild(label);
  form.appendChild(input);
  form.appendChild(sendButton);
  panel.appendChild(form);

  var footer = el("div", { class: "footer" });
  var humanButton = el("button", { type: "button", class: "human" }, "Talk to a human");
  footer.appendChild(humanButton);
  panel.appendChild(footer);

  root.appendChild(panel);
  root.appendChild(launcher);

  // --- HTTP ------------------------------------------------------------------------------
  function HttpError(status, message, retryAfter) {
    this.status = status;
    this.message = message;
    this.retryAfter = retryAfter;
  }

  function request(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(API + path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      mode: "cors",
      credentials: "omit",
    }).then(
      function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            if (response.ok) return data;
            var message = (data && data.error && data.error.message) || "";
            throw new HttpError(response.status, message, response.headers.get("Retry-After"));
          });
      },
      function () {
        throw new HttpError(0, "", null);
      }
    );
  }

  // `kept`: the visitor's text stays in the box, so say so.
  function friendlyError(error, kept) {
    var keptNote = kept ? " Your message is kept, so you can send it again." : "";
    if (error.status === 0) return "We couldn't reach support. Check your connection." + keptNote;
    if (error.status === 429) {
      var seconds = parseInt(error.retryAfter, 10);
      return (
        "You're sending messages faster than we can take them. Please wait " +
        (seconds > 0 ? seconds + " seconds" : "a moment") +
        " and try again." +
        keptNote
      );
    }
    if (error.status >= 500) {
      return "Our chat is having trouble right now. Please try again in a moment." + keptNote;
    }
    if (error.status === 413) return "That message is too long. Please shorten it.";
    if (!kept) return error.message || "Please try again.";
    return error.message ? "Not sent: " + error.message : "Not sent. Please try again.";
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  // --- rendering -------------------------------------------------------------------------
  var AUTHORS = { customer: "You", copilot: "Assistant (automated)", agent: "Support team" };

  function renderMessage(message) {
    var item = el("li", { class: "message " + message.author_kind, "data-message-id": String(message.id) });
    item.appendChild(el("span", { class: "author" }, AUTHORS[message.author_kind] || "Support"));
    item.appendChild(el("p", { class: "body" }, message.body));
    if (message.author_kind === "copilot" || message.author_kind === "agent") {
      var rating = el("div", { class: "rating", role: "group", "aria-label": "Was this reply helpful?" });
      [
        ["up", "Helpful"],
        ["down", "Not helpful"],
      ].forEach(function (choice) {
        var button = el("button", {
          type: "button",
          class: "rate rate-" + choice[0],
          "aria-label": choice[1],
          title: choice[1],
          "aria-pressed": state.ratings[message.id] === choice[0] ? "true" : "false",
          "data-value": choice[0],
        });
        button.appendChild(icon(choice[0]));
        button.addEventListener("click", function () {
          rate(message.id, choice[0], rating);
        });
        rating.appendChild(button);
      });
      item.appendChild(rating);
    }
    return item;
  }

  function liveAppend(text) {
    if (!live) {
      live = el("li", { class: "message copilot live", "aria-busy": "true" });
      live.appendChild(el("span", { class: "author" }, AUTHORS.copilot));
      live.appendChild(el("p", { class: "body" }, ""));
      log.insertBefore(live, typing);
      livePieces = 0;
      liveSent = false;
    }
    livePieces += 1;
    live.lastChild.textContent += text;
    drafting = false;
    log.scrollTop = log.scrollHeight;
  }

  function liveDrop() {
    if (live) live.remove();
    live = null;
    liveSent = false;
  }

  function addMessages(incoming) {
    var added = 0;
    incoming.forEach(function (message) {
      if (message.id <= lastId) return;
      messages.push(message);
      lastId = message.id;
      var item = renderMessage(message);
      if (live && message.author_kind === "copilot") {
        // The stored reply takes the place of the text that streamed in.
        item.setAttribute("data-streamed-pieces", String(livePieces));
        liveDrop();
      }
      log.insertBefore(item, typing);
      added += 1;
      if (message.author_kind !== "customer" && panel.hidden) unread += 1;
    });
    if (added) log.scrollTop = log.scrollHeight;
    badge.hidden = unread === 0;
    badge.textContent = unread ? String(unread) : "";
    launcher.setAttribute("aria-label", unread ? "Open the support chat, " + unread + " new" : "Open the support chat");
    updateTyping();
  }

  function awaitingReply() {
    var last = messages[messages.length - 1];
    return Boolean(last && last.author_kind === "customer" && status === "new");
  }

  function updateTyping() {
    typing.hidden = !(awaitingReply() || drafting);
  }

  function setStatus(value) {
    status = value || status;
    // A person has it, or it is answered: text still streaming in was not sent.
    if (live && !liveSent && status !== "new") liveDrop();
    var text = "";
    if (status === "handed_off") text = "A person from our team has taken over and will reply here.";
    else if (status === "needs_review") text = "A person from our team is checking the answer and will reply here shortly.";
    else if (status === "resolved") text = "This conversation is closed. Write again any time to reopen it.";
    notice.textContent = text;
    notice.hidden = !text;
    humanButton.hidden = !state.token || status === "handed_off";
    updateTyping();
  }

  // --- actions ---------------------------------------------------------------------------
  function resetConversation() {
    state.token = null;
    state.conversationId = null;
    state.ratings = {};
    messages = [];
    lastId = 0;
    Array.prototype.slice.call(log.querySelectorAll(".message")).forEach(function (node) {
      node.remove();
    });
    save();
  }

  function send(text) {
    if (state.token) return request("POST", "/messages", { body: text });
    var start = { body: text };
    if (identity) start.identity = identity;
    return request("POST", "/conversations", start).then(function (data) {
      state.token = data.visitor_token;
      state.conversationId = data.conversation_id;
      state.userId = identityUserId();
      save();
      status = "new";
      return data.message;
    });
  }

  // The server's limit (MESSAGE_MAX_CHARS, 20 000 by default; a lower one answers 400 with
  // its own message). Nothing is cut: a longer message is refused here, kept in the box.
  var MAX_MESSAGE_CHARS = 20000;

  function submit(event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || sending) return;
    if (text.length > MAX_MESSAGE_CHARS) {
      showError(
        "Your message is " + text.length.toLocaleString("en") + " characters long; the limit is " +
          MAX_MESSAGE_CHARS.toLocaleString("en") + ". Please shorten it or send it in parts. " +
          "Your message is kept."
      );
      return;
    }
    sending = true;
    sendButton.disabled = true;
    showError("");
    send(text)
      .catch(function (error) {
        // An expired or foreign token: start a fresh conversation with the same text.
        if (state.token && (error.status === 401 || error.status === 403 || error.status === 404)) {
          resetConversation();
          return send(text);
        }
        throw error;
      })
      .then(
        function (message) {
          input.value = "";
          state.unsent = "";
          save();
          addMessages([message]);
          setStatus(status === "resolved" || status === "awaiting_customer" ? "new" : status || "new");
          fastUntil = Date.now() + FAST_POLL_FOR_MS;
          schedulePoll(FAST_POLL_MS);
          follow();
        },
        function (error) {
          showError(friendlyError(error, true));
        }
      )
      .then(function () {
        sending = false;
        sendButton.disabled = false;
      });
  }

  function poll() {
    pollTimer = null;
    if (!state.token) return;
    request("GET", "/messages?since=" + lastId)
      .then(
        function (data) {
          addMessages(data.messages || []);
          setStatus(data.status);
        },
        function (error) {
          if (error.status === 401 || error.status === 404) {
            resetConversation();
            setStatus("");
            return;
          }
        }
      )
      .then(function () {
        schedulePoll();
      });
  }

  function schedulePoll(delay) {
    if (!state.token) return;
    if (pollTimer) window.clearTimeout(pollTimer);
    if (delay === undefined) {
      if (Date.now() < fastUntil) delay = FAST_POLL_MS;
      else if (!panel.hidden && !document.hidden) delay = OPEN_POLL_MS;
      else delay = IDLE_POLL_MS;
    }
    pollTimer = window.setTimeout(poll, delay);
  }

  // The copilot's progress on this conversation, as Server-Sent Events read with fetch (so the
  // visitor token travels in a header, not in the URL). Polling stays the backstop.
  function handleStreamEvent(block) {
    var type = "message";
    var data = "";
    block.split("\n").forEach(function (line) {
      if (line.indexOf("event:") === 0) type = line.slice(6).trim();
      else if (line.indexOf("data:") === 0) data += line.slice(5).trim();
    });
    if (!data) return;
    var event;
    try {
      event = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (type === "start") {
      // Which customer message this run answers: a replay of an earlier answer is not shown.
      liveDrop();
      streamFor = event.message_id;
    } else if (type === "typing") {
      drafting = true;
    } else if (type === "delta") {
      var last = messages[messages.length - 1];
      if (!last || last.author_kind !== "customer" || last.id !== streamFor) return;
      liveAppend(event.text || "");
    } else if (type === "reset") {
      // The reply starts over (another model took over): its text so far goes, and
      // "typing" shows until the new text, which may never come (a link stops the view).
      liveDrop();
      drafting = true;
    } else if (type === "retract") {
      liveDrop();
    } else if (type === "message") {
      drafting = false;
      liveSent = Boolean(live);
      schedulePoll(0);
    } else if (type === "handed_off" || type === "needs_review") {
      drafting = false;
      liveDrop();
      setStatus(type);
      schedulePoll(0);
    }
    updateTyping();
  }

  function follow(attempt) {
    attempt = attempt || 0;
    if (following || !state.token || !window.ReadableStream || !window.TextDecoder) return;
    following = true;
    fetch(API + "/stream", {
      headers: { Authorization: "Bearer " + state.token, Accept: "text/event-stream" },
      mode: "cors",
      credentials: "omit",
    })
      .then(function (response) {
        if (!response.ok || !response.body) throw new HttpError(response.status, "", null);
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) return;
            buffer += decoder.decode(chunk.value, { stream: true });
            var blocks = buffer.split("\n\n");
            buffer = blocks.pop();
            blocks.forEach(handleStreamEvent);
            return pump();
          });
        }
        return pump();
      })
      .catch(function () {
        return null;
      })
      .then(function () {
        following = false;
        drafting = false;
        // A stream that ended before the reply was sent leaves no unsent text on screen.
        if (!liveSent) liveDrop();
        updateTyping();
        // An earlier draft's events may have ended the stream: follow again while waiting.
        if (awaitingReply() && attempt < 3) window.setTimeout(function () { follow(attempt + 1); }, 1000);
      });
  }

  function rate(messageId, value, group) {
    request("POST", "/messages/" + messageId + "/rating", { value: value }).then(
      function () {
        state.ratings[messageId] = value;
        save();
        Array.prototype.slice.call(group.querySelectorAll("button")).forEach(function (button) {
          button.setAttribute("aria-pressed", button.dataset.value === value ? "true" : "false");
        });
        showError("");
      },
      function (error) {
        showError("Your rating was not saved. " + friendlyError(error, false));
      }
    );
  }

  function askForHuman() {
    humanButton.disabled = true;
    request("POST", "/human", {})
      .then(
        function (data) {
          setStatus(data.status);
          showError("");
        },
        function (error) {
          showError(error.status === 409 ? error.message : friendlyError(error, false));
        }
      )
      .then(function () {
        humanButton.disabled = false;
      });
  }

  function openPanel(focus) {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    host.setAttribute("data-open", "");
    unread = 0;
    badge.hidden = true;
    launcher.setAttribute("aria-label", "Close the support chat");
    state.open = true;
    save();
    log.scrollTop = log.scrollHeight;
    if (focus !== false) input.focus();
    schedulePoll(0);
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    host.removeAttribute("data-open");
    launcher.setAttribute("aria-label", "Open the support chat");
    state.open = false;
    save();
    launcher.focus();
  }

  launcher.addEventListener("click", function () {
    if (panel.hidden) openPanel();
    else closePanel();
  });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closePanel();
  });
  form.addEventListener("submit", submit);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) submit(event);
  });
  input.addEventListener("input", function () {
    state.unsent = input.value;
    save();
  });
  humanButton.addEventListener("click", askForHuman);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) schedulePoll(0);
  });

  // Another person's conversation, and the text they left unsent, go from the panel.
  function forgetPreviousUser() {
    resetConversation();
    state.unsent = "";
    input.value = "";
    save();
  }

  window.DeskpilotWidget = {
    identify: function (user) {
      identity = identityFrom(user);
      if (identityChanged()) {
        forgetPreviousUser();
        setStatus("");
      }
    },
  };

  function start() {
    document.body.appendChild(host);
    if (identityChanged()) forgetPreviousUser();
    input.value = state.unsent || "";
    setStatus("");
    if (state.token) poll();
    if (state.open) openPanel(false);
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
