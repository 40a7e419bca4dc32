/* Sandbox UI: a reporter's phone and a coordinators' group, driven by the control API (/_sandbox/...).
 * Plain DOM, no framework. Message content is only ever put into the page through textContent /
 * text nodes, never innerHTML. */
"use strict";

(function () {
  const LOCALES = ["en", "km", "zh-hans", "zh-hant", "vi", "th", "my", "lo", "id", "ms", "fil", "hi", "bn",
    "ne", "si", "ta", "ur", "ko", "ja", "sw", "am"];
  const SAMPLE_LOCATIONS = [
    ["Phnom Penh Sen Sok", 11.5930, 104.8780],
    ["Sihanoukville", 10.6250, 103.5230],
    ["Poipet", 13.6580, 102.5630],
    ["Bavet", 11.0640, 106.1400],
    ["Myawaddy", 16.6880, 98.5080],
    ["Shwe Kokko", 16.8330, 98.5140],
    ["Golden Triangle SEZ", 20.3580, 100.0900],
  ];
  const SAMPLE_PHONE = "+85512345678";

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);

  const ui = {
    status: $("connection-status"),
    userSelect: $("reporter-user-select"),
    botSelect: $("reporter-bot-select"),
    botField: $("bot-field"),
    newUserToggle: $("new-user-toggle"),
    newUserForm: $("new-user-form"),
    newUserName: $("new-user-name"),
    newUserLang: $("new-user-lang"),
    noUserHint: $("no-user-hint"),
    rTranscript: $("reporter-transcript"),
    rReplyBar: $("reporter-reply-bar"),
    replyKeyboard: $("reply-keyboard"),
    keyboardToggle: $("keyboard-toggle"),
    picker: $("picker"),
    pickerList: $("picker-list"),
    rComposer: $("reporter-composer"),
    rInput: $("reporter-input"),
    groupSelect: $("group-select"),
    memberSelect: $("group-member-select"),
    noGroupHint: $("no-group-hint"),
    topicList: $("topic-list"),
    newTopicForm: $("new-topic-form"),
    newTopicName: $("new-topic-name"),
    gTranscript: $("group-transcript"),
    gReplyBar: $("group-reply-bar"),
    gComposer: $("group-composer"),
    gInput: $("group-input"),
    toasts: $("toasts"),
  };

  // ---- application state -------------------------------------------------------------------------
  const st = {
    world: null,          // last GET /_sandbox/state
    version: 0,
    userId: params.get("user") ? Number(params.get("user")) : null,
    botId: params.get("bot") ? Number(params.get("bot")) : null,
    groupId: params.get("group") ? Number(params.get("group")) : null,
    threadId: params.get("thread") ? Number(params.get("thread")) : null, // null = General
    memberId: params.get("member") ? Number(params.get("member")) : null,
    reporter: { replyTo: null, keyboard: null, keyboardHidden: false, keyboardSig: "", messages: [] },
    group: { replyTo: null, messages: [] },
  };

  // ---- HTTP helpers ------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(method, path, body, opts) {
    const init = { method, headers: {}, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (opts && opts.signal) init.signal = opts.signal;
    const resp = await fetch(path, init);
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = { error: text.slice(0, 200) }; }
    }
    if (!resp.ok) {
      const msg = (data && (data.error || data.description)) || (resp.status + " " + resp.statusText);
      throw new ApiError(msg, resp.status);
    }
    return data;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- small DOM helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function toast(text, kind) {
    const t = el("div", { class: "toast " + (kind || ""), "data-testid": "toast", role: kind === "alert" ? "alert" : "status" });
    t.textContent = text;
    ui.toasts.append(t);
    const ttl = kind === "alert" ? 8000 : kind === "error" ? 6000 : 3500;
    setTimeout(() => { t.classList.add("leaving"); setTimeout(() => t.remove(), 400); }, ttl);
  }

  function setConnection(state) {
    ui.status.dataset.state = state;
    ui.status.textContent = state === "connected" ? "connected" : state === "disconnected" ? "disconnected, retrying…" : "connecting…";
  }

  function safeUrl(url) {
    try {
      const u = new URL(url, location.href);
      return (u.protocol === "http:" || u.protocol === "https:") ? u.href : null;
    } catch (e) { return null; }
  }

  function fileUrl(fileId) { return "/_sandbox/files/" + encodeURIComponent(fileId); }

  function userName(u) {
    if (!u) return "?";
    const n = [u.first_name, u.last_name].filter(Boolean).join(" ");
    return n || (u.username ? "@" + u.username : String(u.id));
  }

  function langTag(code) {
    if (!code) return "";
    if (code === "zh-hans") return "zh-Hans";
    if (code === "zh-hant") return "zh-Hant";
    return code;
  }

  function fmtTime(unix) {
    const d = new Date(unix * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes());
  }

  // ---- world accessors -----------------------------------------------------------------------------
  const users = () => (st.world ? (st.world.users || []).filter((u) => !u.is_bot) : []);
  const bots = () => (st.world ? st.world.bots || [] : []);
  const groups = () => (st.world ? (st.world.chats || []).filter((c) => c.type === "group" || c.type === "supergroup") : []);
  const findUser = (id) => users().find((u) => u.id === id) || bots().find((b) => b.id === id) || null;
  const currentGroup = () => groups().find((c) => c.id === st.groupId) || null;
  const botLabel = (b) => (b.username ? "@" + b.username : userName(b));

  function groupMembers(chat) {
    if (!chat || !chat.members) return [];
    const botIds = new Set(bots().map((b) => b.id));
    return Object.entries(chat.members)
      .filter(([, status]) => status !== "left" && status !== "kicked")
      .map(([id, status]) => ({ id: Number(id), status }))
      .filter((m) => !botIds.has(m.id) && !(findUser(m.id) || {}).is_bot);
  }

  function syncUrl() {
    const p = new URLSearchParams(location.search);
    const set = (k, v) => (v === null || v === undefined ? p.delete(k) : p.set(k, String(v)));
    set("user", st.userId);
    set("group", st.groupId);
    set("thread", st.threadId);
    set("bot", bots().length > 1 ? st.botId : null);
    const q = p.toString();
    history.replaceState(null, "", location.pathname + (q ? "?" + q : ""));
  }

  // ---- selectors -------------------------------------------------------------------------------------
  function fillSelect(select, items, selected, emptyLabel) {
    const sig = JSON.stringify([items, selected, emptyLabel]);
    if (select.dataset.sig === sig) return;
    select.dataset.sig = sig;
    select.replaceChildren();
    if (!items.length) {
      select.append(el("option", { value: "", text: emptyLabel || "(none)" }));
      select.disabled = true;
      return;
    }
    select.disabled = false;
    for (const [value, label] of items) {
      const o = el("option", { value: String(value), text: label });
      if (value === selected) o.selected = true;
      select.append(o);
    }
  }

  function renderSelectors() {
    const us = users();
    if (!us.some((u) => u.id === st.userId)) st.userId = us.length ? us[us.length - 1].id : null;
    fillSelect(ui.userSelect,
      us.map((u) => [u.id, userName(u) + (u.language_code ? " (" + u.language_code + ")" : "") + " · " + u.id]),
      st.userId, "no users yet");
    const hasUsers = us.length > 0;
    ui.noUserHint.hidden = hasUsers;
    if (!hasUsers) showNewUserForm(true);
    const u = findUser(st.userId);
    const lang = langTag(u && u.language_code);
    if (lang) { ui.rTranscript.setAttribute("lang", lang); ui.rInput.setAttribute("lang", lang); }
    else { ui.rTranscript.removeAttribute("lang"); ui.rInput.removeAttribute("lang"); }

    const bs = bots();
    if (!bs.some((b) => b.id === st.botId)) st.botId = bs.length ? bs[0].id : null;
    fillSelect(ui.botSelect, bs.map((b) => [b.id, botLabel(b)]), st.botId, "no bot");
    ui.botField.hidden = bs.length <= 1;

    const gs = groups();
    if (!gs.some((g) => g.id === st.groupId)) {
      st.groupId = gs.length ? gs[0].id : null;
      st.threadId = null;
    }
    fillSelect(ui.groupSelect, gs.map((g) => [g.id, (g.title || "group") + " · " + g.id]), st.groupId, "no groups");
    ui.noGroupHint.hidden = gs.length > 0;
    const chat = currentGroup();
    if (chat && st.threadId !== null && !(chat.topics || []).some((t) => t.message_thread_id === st.threadId)) {
      st.threadId = null;
    }
    const members = groupMembers(chat);
    if (!members.some((m) => m.id === st.memberId)) {
      const admin = members.find((m) => m.status === "administrator" || m.status === "creator");
      st.memberId = admin ? admin.id : members.length ? members[0].id : null;
    }
    fillSelect(ui.memberSelect,
      members.map((m) => [m.id, userName(findUser(m.id)) + (m.status !== "member" ? " (" + m.status + ")" : "")]),
      st.memberId, "no members");
    renderTopics(chat);
    syncUrl();
  }

  function renderTopics(chat) {
    const topics = chat && chat.is_forum ? chat.topics || [] : [];
    const sig = JSON.stringify([chat && chat.id, topics, st.threadId]);
    ui.newTopicForm.hidden = !(chat && chat.is_forum);
    if (ui.topicList.dataset.sig === sig) return;
    ui.topicList.dataset.sig = sig;
    ui.topicList.replaceChildren();
    if (!chat) return;
    const entries = [{ message_thread_id: null, name: "General", icon_color: null }].concat(topics);
    for (const t of entries) {
      const selected = t.message_thread_id === st.threadId;
      const dot = el("span", { class: "topic-dot", "aria-hidden": "true" });
      if (typeof t.icon_color === "number") dot.style.background = "#" + t.icon_color.toString(16).padStart(6, "0");
      else dot.classList.add("general");
      const btn = el("button", {
        type: "button", class: "topic" + (selected ? " selected" : ""), "data-testid": "topic-button",
        "data-thread-id": t.message_thread_id === null ? "general" : t.message_thread_id,
        "aria-current": selected ? "true" : null, dir: "auto",
        onclick: () => selectTopic(t.message_thread_id),
      }, dot, el("span", { class: "topic-name", text: t.name || "(unnamed)" }),
      t.is_closed ? el("span", { class: "topic-closed", title: "closed", text: "🔒" }) : null);
      ui.topicList.append(el("div", { role: "listitem" }, btn));
    }
    if (!chat.is_forum) ui.topicList.append(el("p", { class: "hint small", text: "Not a forum: no topics." }));
  }

  function selectTopic(threadId) {
    if (st.threadId === threadId) return;
    st.threadId = threadId;
    setReply("group", null);
    resetTranscript(ui.gTranscript);
    renderTopics(currentGroup());
    syncUrl();
    refreshGroup();
  }

  // ---- entity rendering ------------------------------------------------------------------------------
  function entityElement(e, fullText) {
    const sub = fullText.slice(e.offset, e.offset + e.length);
    switch (e.type) {
      case "bold": return el("strong");
      case "italic": return el("em");
      case "underline": return el("u");
      case "strikethrough": return el("s");
      case "code": return el("code");
      case "pre": {
        const code = el("code");
        if (e.language) code.dataset.language = e.language;
        return { outer: el("pre", {}, code), inner: code };
      }
      case "spoiler": {
        const s = el("span", { class: "spoiler", tabindex: "0", role: "button", "aria-label": "spoiler, activate to reveal", "aria-pressed": "false" });
        return s;
      }
      case "blockquote": return el("blockquote");
      case "expandable_blockquote": return el("blockquote", { class: "expandable" });
      case "text_link": case "url": {
        const raw = e.type === "text_link" ? e.url : (/^[a-z][a-z0-9+.-]*:/i.test(sub) ? sub : "http://" + sub);
        const href = safeUrl(raw || "");
        if (!href) return el("span", { class: "link-disabled", title: "blocked link: " + (raw || "") });
        return el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", title: href });
      }
      case "text_mention": return el("span", { class: "mention", title: e.user ? "user " + e.user.id : "" });
      case "mention": case "hashtag": case "cashtag": case "bot_command": case "email": case "phone_number":
        return el("span", { class: e.type.replace("_", "-") });
      case "custom_emoji": return el("span", { class: "custom-emoji" });
      default: return el("span", { class: "entity-" + String(e.type).replace(/[^a-z_]/gi, "") });
    }
  }

  function buildRange(text, start, end, entities, parent) {
    let ents = entities;
    let pos = start;
    let i = 0;
    while (i < ents.length) {
      const e = ents[i];
      const eStart = Math.max(e.offset, pos);
      const eEnd = Math.min(e.offset + e.length, end);
      if (eEnd <= eStart) { i++; continue; }
      if (eStart > pos) parent.append(text.slice(pos, eStart));
      let j = i + 1;
      const kids = [];
      while (j < ents.length && ents[j].offset < eEnd) { kids.push(ents[j]); j++; }
      const made = entityElement(e, text);
      const outer = made.outer || made;
      const inner = made.inner || made;
      buildRange(text, eStart, eEnd, kids, inner);
      parent.append(outer);
      pos = eEnd;
      i = j;
      // An entity that overlaps the end of this one (not valid Telegram nesting) goes on after it.
      const rest = kids.filter((k) => k.offset + k.length > eEnd)
        .map((k) => Object.assign({}, k, { offset: eEnd, length: k.offset + k.length - eEnd }));
      if (rest.length) {
        ents = ents.slice(0, i).concat(ents.slice(i), rest).sort((a, b) => a.offset - b.offset || b.length - a.length);
      }
    }
    if (pos < end) parent.append(text.slice(pos, end));
  }

  function renderText(text, entities, cls) {
    const box = el("div", { class: cls || "text", dir: "auto" });
    const ents = (Array.isArray(entities) ? entities : [])
      .filter((e) => e && Number.isInteger(e.offset) && Number.isInteger(e.length) && e.length > 0 &&
        e.offset >= 0 && e.offset < text.length)
      .slice()
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    buildRange(text, 0, text.length, ents, box);
    return box;
  }

  // ---- message rendering -----------------------------------------------------------------------------
  function senderName(m) {
    if (m.sender_chat) return m.sender_chat.title || "chat";
    return m.from ? (m.from.is_bot && m.from.username ? "@" + m.from.username : userName(m.from)) : "?";
  }

  function forwardName(o) {
    if (!o) return "";
    switch (o.type) {
      case "user": return userName(o.sender_user);
      case "hidden_user": return o.sender_user_name || "hidden user";
      case "chat": return (o.sender_chat && o.sender_chat.title) || "a chat";
      case "channel": return (o.chat && o.chat.title) || "a channel";
      default: return o.sender_user_name || (o.sender_user && userName(o.sender_user)) || "unknown";
    }
  }

  function snippet(m) {
    if (!m) return "";
    if (m.text) return m.text.slice(0, 80);
    if (m.caption) return m.caption.slice(0, 80);
    if (m.photo) return "🖼 Photo";
    if (m.voice) return "🎤 Voice message";
    if (m.document) return "📄 " + (m.document.file_name || "File");
    if (m.location) return "📍 Location";
    if (m.contact) return "👤 Contact";
    if (m.sticker) return (m.sticker.emoji || "") + " Sticker";
    if (m.poll) return "📊 " + m.poll.question;
    return "message";
  }

  function serviceText(m) {
    if (m.forum_topic_created) return "Topic created: " + (m.forum_topic_created.name || "");
    if (m.forum_topic_edited) return "Topic edited" + (m.forum_topic_edited.name ? ": " + m.forum_topic_edited.name : "");
    if (m.forum_topic_closed) return "Topic closed";
    if (m.forum_topic_reopened) return "Topic reopened";
    if (m.general_forum_topic_hidden) return "General topic hidden";
    if (m.general_forum_topic_unhidden) return "General topic shown";
    if (m.new_chat_members) return m.new_chat_members.map(userName).join(", ") + " joined";
    if (m.left_chat_member) return userName(m.left_chat_member) + " left";
    if (m.new_chat_title) return "Title changed to " + m.new_chat_title;
    if (m.pinned_message) return senderName(m) + " pinned: " + snippet(m.pinned_message);
    if (m.group_chat_created || m.supergroup_chat_created) return "Group created";
    if (m.migrate_to_chat_id) return "Group upgraded to supergroup " + m.migrate_to_chat_id;
    if (m.migrate_from_chat_id) return "Upgraded from group " + m.migrate_from_chat_id;
    return null;
  }

  function renderInlineKeyboard(m, pane) {
    const rm = m.reply_markup;
    if (!rm || !Array.isArray(rm.inline_keyboard) || !rm.inline_keyboard.length) return null;
    const kb = el("div", { class: "inline-keyboard", role: "group", "aria-label": "Message buttons" });
    for (const row of rm.inline_keyboard) {
      const r = el("div", { class: "inline-row" });
      for (const b of row || []) {
        const label = b && b.text !== undefined ? String(b.text) : "?";
        if (b && b.url !== undefined) {
          const href = safeUrl(b.url);
          if (href) {
            r.append(el("a", { class: "inline-btn", href, target: "_blank", rel: "noopener noreferrer nofollow",
              title: href, "data-testid": "inline-button", "data-url": href, dir: "auto", text: label + " ↗" }));
          } else {
            r.append(el("button", { type: "button", class: "inline-btn", disabled: true, title: "blocked URL: " + b.url,
              "data-testid": "inline-button", dir: "auto", text: label }));
          }
        } else if (b && b.callback_data !== undefined) {
          r.append(el("button", {
            type: "button", class: "inline-btn", "data-testid": "inline-button", "data-callback-data": b.callback_data,
            dir: "auto", text: label, onclick: (ev) => pressInline(ev.currentTarget, m, b, pane),
          }));
        } else {
          r.append(el("button", { type: "button", class: "inline-btn", disabled: true, "data-testid": "inline-button",
            title: "button kind not emulated", dir: "auto", text: label }));
        }
      }
      kb.append(r);
    }
    return kb;
  }

  function renderMessage(m, pane, ctx) {
    const fromBot = !!(m.from && m.from.is_bot);
    const own = pane === "reporter" ? !fromBot : (m.from && m.from.id === ctx.ownId);
    const svc = serviceText(m);
    const bubble = el("div", {
      class: "message" + (fromBot ? " from-bot" : " from-human") + (own ? " own" : "") + (svc ? " service" : ""),
      "data-testid": "message", "data-message-id": m.message_id, "data-from-bot": fromBot ? "true" : "false",
      "data-from-id": m.from ? m.from.id : null, "data-thread-id": m.message_thread_id,
    });
    if (svc && !m.text && !m.caption) {
      bubble.append(el("div", { class: "service-text", dir: "auto", text: svc }));
      return bubble;
    }
    if (pane === "group" || (pane === "reporter" && fromBot && ctx.multiBot)) {
      bubble.append(el("div", { class: "sender", dir: "auto", text: senderName(m) }));
    }
    if (m.forward_origin || m.forward_from || m.forward_sender_name || m.forward_from_chat) {
      const name = m.forward_origin ? forwardName(m.forward_origin)
        : m.forward_from ? userName(m.forward_from) : m.forward_sender_name || (m.forward_from_chat || {}).title;
      bubble.append(el("div", { class: "forwarded", "data-testid": "forwarded", dir: "auto", text: "Forwarded from " + name }));
    }
    const r = m.reply_to_message;
    if (r && !(r.forum_topic_created && r.message_id === m.message_thread_id)) {
      bubble.append(el("div", { class: "reply-quote", dir: "auto", "data-reply-to": r.message_id },
        el("span", { class: "reply-quote-name", text: senderName(r) }), el("span", { text: snippet(r) })));
    }
    if (m.photo && m.photo.length) {
      const largest = m.photo.reduce((a, b) => ((b.width || 0) * (b.height || 0) >= (a.width || 0) * (a.height || 0) ? b : a));
      bubble.append(el("img", { class: "photo", src: fileUrl(largest.file_id), alt: m.caption ? "Photo: " + m.caption : "Photo",
        loading: "lazy", width: largest.width, height: largest.height }));
    }
    if (m.voice) {
      bubble.append(el("div", { class: "voice" },
        el("span", { "aria-hidden": "true", text: "🎤" }),
        el("audio", { controls: true, preload: "none", src: fileUrl(m.voice.file_id), "aria-label": "Voice message" }),
        m.voice.duration ? el("span", { class: "muted small", text: m.voice.duration + "s" }) : null));
    }
    if (m.audio) {
      bubble.append(el("audio", { controls: true, preload: "none", src: fileUrl(m.audio.file_id), "aria-label": "Audio" }));
    }
    if (m.document) {
      bubble.append(el("a", { class: "document", href: fileUrl(m.document.file_id), download: m.document.file_name || "file",
        dir: "auto", text: "📄 " + (m.document.file_name || "file") + (m.document.mime_type ? " (" + m.document.mime_type + ")" : "") }));
    }
    if (m.sticker) {
      bubble.classList.add("has-sticker");
      bubble.append(el("div", { class: "sticker", role: "img", "aria-label": "Sticker " + (m.sticker.emoji || ""), text: m.sticker.emoji || "🖼" }));
    }
    if (m.venue) {
      bubble.append(el("div", { class: "venue", dir: "auto", text: "📍 " + (m.venue.title || "") + (m.venue.address ? ", " + m.venue.address : "") }));
    }
    if (m.location) {
      bubble.append(el("div", { class: "location", "data-testid": "location", text: "📍 " + m.location.latitude + ", " + m.location.longitude }));
    }
    if (m.contact) {
      bubble.append(el("div", { class: "contact", dir: "auto",
        text: "👤 " + [m.contact.first_name, m.contact.last_name].filter(Boolean).join(" ") + " " + (m.contact.phone_number || "") }));
    }
    if (m.poll) {
      const ul = el("ul", { class: "poll-options" });
      for (const o of m.poll.options || []) ul.append(el("li", { dir: "auto", text: typeof o === "string" ? o : o.text }));
      bubble.append(el("div", { class: "poll" }, el("strong", { dir: "auto", text: "📊 " + m.poll.question }), ul));
    }
    if (typeof m.text === "string") bubble.append(renderText(m.text, m.entities, "text"));
    if (typeof m.caption === "string") bubble.append(renderText(m.caption, m.caption_entities, "text caption"));
    if (svc && (m.text || m.caption)) bubble.append(el("div", { class: "service-text", text: svc }));
    if (bubble.childElementCount === 0 || (bubble.childElementCount === 1 && bubble.firstChild.classList.contains("sender"))) {
      const kinds = Object.keys(m).filter((k) => !["message_id", "from", "chat", "date", "message_thread_id", "is_topic_message"].includes(k));
      bubble.append(el("div", { class: "service-text", text: "[" + (kinds.join(", ") || "empty message") + "]" }));
    }
    const kb = renderInlineKeyboard(m, pane);
    if (kb) bubble.append(kb);

    const meta = el("div", { class: "meta" });
    if (ctx.pinned.has(m.message_id)) meta.append(el("span", { class: "pinned", title: "pinned", text: "📌" }));
    if (m.edit_date) meta.append(el("span", { class: "edited", "data-testid": "edited", title: "edited at " + fmtTime(m.edit_date), text: "edited" }));
    meta.append(el("time", { datetime: new Date(m.date * 1000).toISOString(), title: new Date(m.date * 1000).toLocaleString(), text: fmtTime(m.date) }));
    meta.append(el("button", { type: "button", class: "reply-btn", "data-testid": "reply-to", "aria-label": "Reply to this message",
      title: "Reply", text: "↩", onclick: () => setReply(pane, m) }));
    bubble.append(meta);
    return bubble;
  }

  // Keyed update of a transcript container: unchanged messages keep their DOM (audio keeps playing).
  function resetTranscript(container) {
    container.replaceChildren();
    container._cache = new Map();
    container._stick = true;
  }

  function renderTranscript(container, messages, pane, ctx, emptyText) {
    if (!container._cache) container._cache = new Map();
    const cache = container._cache;
    const seen = new Set();
    const ctxSig = "|" + ctx.ownId + "|" + ctx.multiBot;
    let index = 0;
    const placeholder = container.querySelector(".empty");
    if (placeholder) placeholder.remove();
    let added = false;
    for (const m of messages) {
      const key = m.message_id;
      seen.add(key);
      const sig = JSON.stringify(m) + ctxSig + "|" + ctx.pinned.has(key);
      let entry = cache.get(key);
      if (!entry || entry.sig !== sig) {
        const node = renderMessage(m, pane, ctx);
        if (entry) entry.node.replaceWith(node); else added = true;
        entry = { sig, node };
        cache.set(key, entry);
      }
      const replyTo = st[pane].replyTo;
      entry.node.classList.toggle("replying", !!replyTo && replyTo.message_id === key);
      if (container.children[index] !== entry.node) container.insertBefore(entry.node, container.children[index] || null);
      index++;
    }
    for (const [key, entry] of cache) {
      if (!seen.has(key)) { entry.node.remove(); cache.delete(key); }
    }
    if (!messages.length) container.append(el("p", { class: "empty hint", text: emptyText }));
    if (added && container._stick !== false) stickToBottom(container);
  }

  // A transcript follows new messages while the user is at its bottom (Telegram-like).
  function followBottom(container) {
    container._stick = true;
    let lastTop = 0;
    container.addEventListener("scroll", () => {
      // Only a move upwards (the user reading back) stops following; layout changes do not.
      const top = container.scrollTop;
      if (container.scrollHeight - top - container.clientHeight < 60) container._stick = true;
      else if (top < lastTop - 2) container._stick = false;
      lastTop = top;
    });
    const again = () => { if (container._stick) stickToBottom(container); };
    container.addEventListener("load", again, true); // images arriving change heights
    if (window.ResizeObserver) new ResizeObserver(again).observe(container);
  }
  function stickToBottom(container) {
    container.scrollTop = container.scrollHeight;
    container._stick = true;
  }

  // ---- reply-to --------------------------------------------------------------------------------------
  function setReply(pane, m) {
    st[pane].replyTo = m;
    const bar = pane === "reporter" ? ui.rReplyBar : ui.gReplyBar;
    const container = pane === "reporter" ? ui.rTranscript : ui.gTranscript;
    bar.hidden = !m;
    bar.querySelector(".reply-bar-text").textContent = m ? "Replying to " + senderName(m) + ": " + snippet(m) : "";
    for (const n of container.querySelectorAll(".message")) {
      n.classList.toggle("replying", !!m && Number(n.dataset.messageId) === m.message_id);
    }
    if (m) (pane === "reporter" ? ui.rInput : ui.gInput).focus();
  }

  function onTranscriptClick(pane, ev) {
    if (ev.target.closest("button, a, audio, video, input, select, textarea, .spoiler, summary")) return;
    const sel = window.getSelection();
    if (sel && !sel.isCollapsed) return;
    const bubble = ev.target.closest(".message");
    if (!bubble || bubble.classList.contains("service")) return;
    const id = Number(bubble.dataset.messageId);
    const m = st[pane].messages.find((x) => x.message_id === id);
    if (m) setReply(pane, m);
  }

  function onSpoiler(ev) {
    const s = ev.target.closest(".spoiler");
    if (!s) return;
    if (ev.type === "keydown" && ev.key !== "Enter" && ev.key !== " ") return;
    ev.preventDefault();
    s.classList.toggle("revealed");
    s.setAttribute("aria-pressed", s.classList.contains("revealed") ? "true" : "false");
  }

  // ---- data loading ------------------------------------------------------------------------------------
  function privateChatId() {
    if (!st.world) return st.userId;
    const c = (st.world.chats || []).find((x) => x.type === "private" && x.user_id === st.userId && x.bot_id === st.botId);
    return c ? c.id : null;
  }

  async function refreshReporter() {
    const key = st.userId + ":" + st.botId;
    if (ui.rTranscript.dataset.key !== key) {
      ui.rTranscript.dataset.key = key;
      resetTranscript(ui.rTranscript);
      setReply("reporter", null);
      st.reporter.keyboardSig = "";
    }
    if (st.userId === null || st.botId === null) {
      st.reporter.messages = [];
      renderTranscript(ui.rTranscript, [], "reporter", ctxFor("reporter", new Set()),
        st.userId === null ? "Create a user to start." : "No bot is registered.");
      renderReplyKeyboard(null);
      return;
    }
    const chatId = privateChatId();
    let data = { messages: [], keyboard: null, pinned: [] };
    if (chatId !== null) {
      try {
        data = await api("GET", "/_sandbox/chats/" + chatId + "/transcript?bot_id=" + st.botId);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
    }
    if (ui.rTranscript.dataset.key !== key) return; // selection changed meanwhile
    st.reporter.messages = data.messages || [];
    renderTranscript(ui.rTranscript, st.reporter.messages, "reporter", ctxFor("reporter", new Set(data.pinned || [])),
      "No messages yet. Say hello to the bot, e.g. /start");
    renderReplyKeyboard(data.keyboard || null);
  }

  async function refreshGroup() {
    const key = st.groupId + ":" + st.threadId;
    if (ui.gTranscript.dataset.key !== key) {
      ui.gTranscript.dataset.key = key;
      resetTranscript(ui.gTranscript);
      setReply("group", null);
    }
    const chat = currentGroup();
    if (!chat) {
      st.group.messages = [];
      renderTranscript(ui.gTranscript, [], "group", ctxFor("group", new Set()), "No group selected.");
      return;
    }
    const q = st.threadId !== null ? "?thread_id=" + st.threadId : "";
    const data = await api("GET", "/_sandbox/chats/" + chat.id + "/transcript" + q);
    if (ui.gTranscript.dataset.key !== key) return;
    let msgs = data.messages || [];
    if (chat.is_forum) {
      const topicIds = new Set((chat.topics || []).map((t) => t.message_thread_id));
      // The server filters a topic by thread_id; without it, keep only what belongs to General.
      if (st.threadId === null) msgs = msgs.filter((m) => !(m.is_topic_message || topicIds.has(m.message_thread_id)));
    }
    st.group.messages = msgs;
    renderTranscript(ui.gTranscript, msgs, "group", ctxFor("group", new Set(data.pinned || [])), "No messages in this topic yet.");
  }

  function ctxFor(pane, pinned) {
    return { pinned, ownId: pane === "group" ? st.memberId : st.userId, multiBot: bots().length > 1 };
  }

  async function refreshState() {
    st.world = await api("GET", "/_sandbox/state");
    st.version = st.world.version;
    renderSelectors();
  }

  // One refresh at a time; requests that arrive meanwhile are merged into one more run.
  let refreshing = null;
  let refreshAgain = false;
  function refreshAll() {
    if (refreshing) { refreshAgain = true; return refreshing; }
    refreshing = (async () => {
      try {
        do {
          refreshAgain = false;
          await refreshState();
          await Promise.all([refreshReporter(), refreshGroup()]);
        } while (refreshAgain);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  async function pollLoop() {
    let ok = false;
    for (;;) {
      try {
        if (!ok) {
          await refreshAll();
          ok = true;
          setConnection("connected");
        }
        const ctrl = new AbortController();
        const timer = setTimeout(() => ctrl.abort(), 40000);
        let ev;
        try {
          ev = await api("GET", "/_sandbox/events?after=" + st.version + "&timeout=25", undefined, { signal: ctrl.signal });
        } finally {
          clearTimeout(timer);
        }
        setConnection("connected");
        // A version going backwards means the server restarted: refetch all the same.
        if (ev && typeof ev.version === "number" && ev.version !== st.version) await refreshAll();
      } catch (e) {
        ok = false;
        setConnection("disconnected");
        await sleep(2000);
      }
    }
  }

  // ---- actions -----------------------------------------------------------------------------------------
  async function act(fn) {
    try {
      const res = await fn();
      refreshAll().catch(() => {});
      return res;
    } catch (e) {
      toast(e.message || String(e), "error");
      return undefined;
    }
  }

  function reporterSend(payload) {
    if (st.userId === null) { toast("Create a user first", "error"); showNewUserForm(true); return Promise.resolve(); }
    if (st.botId === null) { toast("No bot is registered", "error"); return Promise.resolve(); }
    const body = Object.assign({ from_user_id: st.userId, bot_id: st.botId }, payload);
    if (st.reporter.replyTo) body.reply_to_message_id = st.reporter.replyTo.message_id;
    return act(async () => {
      const r = await api("POST", "/_sandbox/messages", body);
      setReply("reporter", null);
      return r;
    });
  }

  function groupSend(text) {
    const chat = currentGroup();
    if (!chat) { toast("No group selected", "error"); return Promise.resolve(); }
    if (st.memberId === null) { toast("The group has no human member to post as", "error"); return Promise.resolve(); }
    const body = { from_user_id: st.memberId, chat_id: chat.id, text };
    if (st.threadId !== null) body.message_thread_id = st.threadId;
    if (st.group.replyTo) body.reply_to_message_id = st.group.replyTo.message_id;
    return act(async () => {
      const r = await api("POST", "/_sandbox/messages", body);
      setReply("group", null);
      return r;
    });
  }

  async function pressInline(button, m, b, pane) {
    const fromId = pane === "reporter" ? st.userId : st.memberId;
    if (fromId === null) { toast(pane === "reporter" ? "Create a user first" : "Choose a group member", "error"); return; }
    const chatId = m.chat ? m.chat.id : pane === "reporter" ? privateChatId() : st.groupId;
    const body = { from_user_id: fromId, chat_id: chatId, message_id: m.message_id, data: b.callback_data };
    const botId = m.from && m.from.is_bot ? m.from.id : st.botId;
    if (botId !== null && botId !== undefined) body.bot_id = botId;
    button.classList.add("pending");
    button.setAttribute("aria-busy", "true");
    try {
      const r = await api("POST", "/_sandbox/callbacks", body);
      const id = r && r.callback_query_id;
      if (!id) return;
      // Wait for the bot's answerCallbackQuery (Telegram shows a spinner meanwhile).
      for (let i = 0; i < 40; i++) {
        const a = await api("GET", "/_sandbox/callbacks/" + encodeURIComponent(id));
        if (a && a.answered) {
          if (a.text) toast(a.text, a.show_alert ? "alert" : "");
          if (a.url) toast("Bot answered with URL: " + a.url, "");
          return;
        }
        await sleep(i < 10 ? 150 : 400);
      }
      toast("The bot did not answer the button press", "error");
    } catch (e) {
      toast(e.message || String(e), "error");
    } finally {
      button.classList.remove("pending");
      button.removeAttribute("aria-busy");
    }
  }

  // ---- reply keyboard & pickers ----------------------------------------------------------------------------
  function renderReplyKeyboard(kb) {
    const rows = kb && Array.isArray(kb.keyboard) ? kb.keyboard : null;
    const sig = JSON.stringify(kb);
    if (sig !== st.reporter.keyboardSig) {
      st.reporter.keyboardSig = sig;
      st.reporter.keyboardHidden = false;
      st.reporter.keyboard = kb;
      ui.replyKeyboard.replaceChildren();
      for (const row of rows || []) {
        const r = el("div", { class: "reply-row" });
        for (const raw of row || []) {
          const b = typeof raw === "string" ? { text: raw } : raw || {};
          const label = (b.request_location ? "📍 " : b.request_contact ? "👤 " : "") + (b.text || "");
          r.append(el("button", { type: "button", class: "reply-btn-key", "data-testid": "reply-button", dir: "auto",
            "data-request": b.request_location ? "location" : b.request_contact ? "contact" : null,
            text: label, onclick: () => pressReplyKey(b) }));
        }
        ui.replyKeyboard.append(r);
      }
      ui.rInput.placeholder = (kb && kb.input_field_placeholder) || "Message";
    }
    const has = !!(rows && rows.length);
    ui.keyboardToggle.hidden = !has;
    ui.replyKeyboard.hidden = !has || st.reporter.keyboardHidden;
    ui.keyboardToggle.setAttribute("aria-expanded", String(has && !st.reporter.keyboardHidden));
  }

  function pressReplyKey(b) {
    const kb = st.reporter.keyboard;
    const after = () => {
      if (kb && kb.one_time_keyboard) { st.reporter.keyboardHidden = true; renderReplyKeyboard(kb); }
    };
    if (b.request_location) { openPicker(after); return; }
    if (b.request_contact) { shareContact().then(after); return; }
    reporterSend({ text: b.text || "" }).then(after);
  }

  function shareContact() {
    const u = findUser(st.userId);
    return reporterSend({ contact: { phone_number: SAMPLE_PHONE, first_name: (u && u.first_name) || "Reporter" } });
  }

  let pickerDone = null;
  function openPicker(done) {
    pickerDone = done || null;
    ui.picker.hidden = false;
    const first = ui.pickerList.querySelector("button");
    if (first) first.focus();
  }
  function closePicker() {
    ui.picker.hidden = true;
    pickerDone = null;
  }

  function buildPicker() {
    for (const [name, lat, lon] of SAMPLE_LOCATIONS) {
      ui.pickerList.append(el("button", {
        type: "button", class: "secondary picker-item", "data-testid": "sample-location",
        "data-lat": lat, "data-lon": lon,
        onclick: () => {
          const done = pickerDone;
          closePicker();
          reporterSend({ location: { latitude: lat, longitude: lon } }).then(() => done && done());
          ui.rInput.focus();
        },
      }, el("span", { text: name }), el("span", { class: "muted small", text: " " + lat.toFixed(4) + ", " + lon.toFixed(4) })));
    }
  }

  // ---- new user / group / topic ------------------------------------------------------------------------------
  function showNewUserForm(show) {
    ui.newUserForm.hidden = !show;
    ui.newUserToggle.setAttribute("aria-expanded", String(show));
    ui.newUserForm.classList.toggle("prominent", users().length === 0);
  }

  function bindEvents() {
    for (const code of LOCALES) ui.newUserLang.append(el("option", { value: code, text: code }));
    buildPicker();
    followBottom(ui.rTranscript);
    followBottom(ui.gTranscript);

    ui.userSelect.addEventListener("change", () => {
      st.userId = ui.userSelect.value ? Number(ui.userSelect.value) : null;
      ui.userSelect.dataset.sig = "";
      closePicker();
      renderSelectors();
      refreshReporter().catch(() => {});
    });
    ui.botSelect.addEventListener("change", () => {
      st.botId = ui.botSelect.value ? Number(ui.botSelect.value) : null;
      renderSelectors();
      refreshReporter().catch(() => {});
    });
    ui.groupSelect.addEventListener("change", () => {
      st.groupId = ui.groupSelect.value ? Number(ui.groupSelect.value) : null;
      st.threadId = null;
      renderSelectors();
      refreshGroup().catch(() => {});
    });
    ui.memberSelect.addEventListener("change", () => {
      st.memberId = ui.memberSelect.value ? Number(ui.memberSelect.value) : null;
      renderSelectors();
      refreshGroup().catch(() => {});
    });

    ui.newUserToggle.addEventListener("click", () => {
      const show = ui.newUserForm.hidden;
      showNewUserForm(show);
      if (show) ui.newUserName.focus();
    });
    ui.newUserForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const name = ui.newUserName.value.trim();
      if (!name) { ui.newUserName.focus(); return; }
      try {
        const u = await api("POST", "/_sandbox/users", { first_name: name, language_code: ui.newUserLang.value });
        ui.newUserName.value = "";
        st.userId = u.id;
        showNewUserForm(false);
        toast("Created user " + userName(u) + " (" + u.id + ")");
        await refreshAll();
        ui.rInput.focus();
      } catch (e) {
        toast(e.message || String(e), "error");
      }
    });

    $("create-group").addEventListener("click", () => act(async () => {
      const hs = users().map((u) => u.id);
      const chat = await api("POST", "/_sandbox/groups", {
        title: "Coordinators", forum: true, supergroup: true, members: hs, admins: hs.slice(0, 1),
        bots: bots().map((b) => ({ bot_id: b.id, admin: true, can_manage_topics: true })),
      });
      st.groupId = chat.id;
      return chat;
    }));

    ui.newTopicForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const name = ui.newTopicName.value.trim();
      if (!name || st.groupId === null) return;
      act(async () => {
        const t = await api("POST", "/_sandbox/groups/" + st.groupId + "/topics", { name });
        ui.newTopicName.value = "";
        if (t && typeof t.message_thread_id === "number") st.threadId = t.message_thread_id;
        return t;
      });
    });

    ui.rComposer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = ui.rInput.value;
      if (!text.trim()) return;
      ui.rInput.value = "";
      reporterSend({ text }).then((r) => { if (r === undefined && !ui.rInput.value) ui.rInput.value = text; });
    });
    ui.gComposer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = ui.gInput.value;
      if (!text.trim()) return;
      ui.gInput.value = "";
      groupSend(text).then((r) => { if (r === undefined && !ui.gInput.value) ui.gInput.value = text; });
    });

    $("attach-photo").addEventListener("click", () => {
      const caption = ui.rInput.value.trim();
      ui.rInput.value = "";
      reporterSend({ photo: caption ? { caption } : {} });
    });
    $("attach-voice").addEventListener("click", () => reporterSend({ voice: { duration: 3 } }));
    $("attach-sticker").addEventListener("click", () => reporterSend({ sticker: { emoji: "🙏" } }));
    $("attach-document").addEventListener("click", () => reporterSend({
      document: { file_name: "note.txt", mime_type: "text/plain", content_base64: btoa("sample document from the sandbox UI\n") },
    }));
    $("attach-location").addEventListener("click", () => (ui.picker.hidden ? openPicker(null) : closePicker()));
    $("attach-contact").addEventListener("click", () => shareContact());
    $("picker-close").addEventListener("click", () => { closePicker(); ui.rInput.focus(); });
    ui.keyboardToggle.addEventListener("click", () => {
      st.reporter.keyboardHidden = !st.reporter.keyboardHidden;
      renderReplyKeyboard(st.reporter.keyboard);
    });

    for (const [pane, container, bar] of [["reporter", ui.rTranscript, ui.rReplyBar], ["group", ui.gTranscript, ui.gReplyBar]]) {
      container.addEventListener("click", (ev) => onTranscriptClick(pane, ev));
      container.addEventListener("click", onSpoiler);
      container.addEventListener("keydown", onSpoiler);
      bar.querySelector(".reply-cancel").addEventListener("click", () => setReply(pane, null));
    }
    document.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape") return;
      if (!ui.picker.hidden) { closePicker(); return; }
      if (ui.gReplyBar.contains(ev.target) || ev.target === ui.gInput) setReply("group", null);
      else if (ui.rReplyBar.contains(ev.target) || ev.target === ui.rInput) setReply("reporter", null);
    });
  }

  bindEvents();
  pollLoop();
})();
