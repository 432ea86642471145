// @ts-check
/*! nemawashi chat widget. Embed with one tag:
 *  <script src="https://HOST/widget.js" defer data-nemawashi-url="https://HOST"></script>
 * Options (data attributes on that tag): data-lang="ja|en|auto", data-title, data-color, data-position="bottom-right|
 * bottom-left", data-departments="営業部,管理部", data-open="true|false", data-suggestions="question|question".
 * Theme with CSS custom properties on #nemawashi-widget: --nw-primary, --nw-on-primary, --nw-bg, --nw-fg, --nw-muted,
 * --nw-line, --nw-radius, --nw-font, --nw-z. Any element with a data-nemawashi-open attribute opens the panel.
 *
 * Safety: questions, answers and citations only ever reach the page as text nodes (textContent) or as elements built
 * here; innerHTML is never used with text that came from a person or a model.
 */
(() => {
  "use strict";
  /**
   * @typedef {{ n: number, title?: string, doc_id?: string, url?: string }} Citation
   * @typedef {{ role: "user", text: string, department: string }} UserTurn
   * @typedef {{ helpful: boolean | null, sent: boolean }} FeedbackState
   * @typedef {{ id?: string, question: string }} RelatedQuestion
   * @typedef {{ state: string, notice: string | null }} Review
   * @typedef {{ role: "assistant", id: string, answer: string, citations: Citation[], mode?: string, status?: string,
   *   related?: RelatedQuestion[], lang: "ja" | "en", feedback: FeedbackState | null, review?: Review }} AnswerTurn
   * @typedef {UserTurn | AnswerTurn} Turn
   * @typedef {{ open: boolean | null, department: string, turns: Turn[], conversation?: string }} SavedState
   * @typedef {{ kind: "rateLimited", wait: number } | { kind: "invalid", message: string }
   *   | { kind: "starting" | "broken" | "offline" | "interrupted" }} Problem
   * @typedef {{ name: string, data: any }} StreamEvent
   * @typedef {{ node: HTMLElement, append(delta: string): void,
   *   finishAnnouncement(finalText: string, label: string): void }} PendingView
   * @typedef {{ open(): void, close(): void, toggle(): void }} WidgetApi
   * @typedef {{ token: string, id: string, question: string, state: string }} FollowupLink
   * @typedef {{ id: string, question: string, lang: string, state: string, answer: string, citations: Citation[],
   *   notice: string | null, changed: boolean }} Followup
   */
  const page = /** @type {Window & { nemawashiWidget?: WidgetApi }} */ (window);
  if (page.nemawashiWidget) return; // embedded twice: keep the first

  const script = /** @type {HTMLScriptElement | null} */ (
    document.currentScript || document.querySelector("script[data-nemawashi-url]")
  );
  const options = (script && script.dataset) || {};
  const scriptOrigin = script && script.src ? new URL(script.src, location.href).origin : location.origin;
  const BASE = (options.nemawashiUrl || scriptOrigin).replace(/\/+$/, "");
  const STORE_KEY = "nemawashi:v1:" + BASE;
  const MAX_CHARS = 2000;
  const MAX_TURNS = 60;
  const STALL_MS = 60000;
  // Follow-up links of this browser's questions (localStorage, all tabs), checked in one request when the panel
  // opens and then at most once a minute while it stays open.
  const LINKS_KEY = "nemawashi:v1:followups:" + BASE;
  const MAX_LINKS = 50;
  const CHECK_MS = 60000;

  const STRINGS = {
    ja: {
      title: "質問・相談窓口",
      subtitle: "社内資料をもとにAIが回答し、担当者が確認します",
      launcher: "質問する",
      close: "閉じる",
      newChat: "新しい会話を始める",
      welcome:
        "今回の変更について、気になること・不安なことを気軽に質問してください。回答には根拠となる社内資料へのリンクが付きます。",
      examples: "質問の例",
      inputLabel: "質問",
      placeholder: "質問を入力（Enterで送信）",
      send: "送信",
      department: "部署（任意）",
      departmentNone: "選択しない",
      you: "あなたの質問",
      answer: "回答",
      thinking: "回答を作成しています…",
      draft: "AI下書き（確認中）",
      approved: "承認済みの回答",
      faq: "FAQの回答",
      extract: "資料の抜粋（確認中）",
      extractNote: "AIは使っていません。社内資料の該当箇所をそのまま示しています。プロジェクトチームが確認しています。",
      related: "もしかして：",
      abstain: "担当チームに引き継ぎました",
      pending: "確認待ち",
      draftNote: "AIが社内資料から作成した下書きです。プロジェクトチームが内容を確認しています。",
      sources: "出典",
      sourceLabel: "出典{n}：{title}（新しいタブで開きます）",
      feedbackAsk: "この回答は役に立ちましたか？",
      helpful: "役に立った",
      notHelpful: "役に立たなかった",
      comment: "コメント（任意）",
      commentHint: "足りなかった点や、本当に知りたかったことを教えてください",
      sendFeedback: "フィードバックを送る",
      feedbackThanks: "フィードバックを受け付けました。ありがとうございます。",
      feedbackFailed: "フィードバックを送れませんでした。もう一度お試しください。",
      offline: "サービスに接続できません。ネットワークを確認し、しばらくしてから再試行してください。",
      starting: "サービスを準備中です。少し待ってから再試行してください。",
      rateLimited: "短時間に質問が集中しています。{s}秒ほど待ってから再試行してください。",
      broken: "回答の途中で問題が発生しました。もう一度お試しください。",
      interrupted: "前回の質問には回答が届きませんでした。",
      invalid: "質問を送れませんでした：{msg}",
      empty: "質問を入力してください。",
      tooLong: "質問は2,000文字以内で入力してください（現在{n}文字）。",
      retry: "再試行",
      retryIn: "再試行（{s}秒）",
      cleared: "会話を消去しました。",
      mine: "自分の質問",
      mineEmpty: "このブラウザから送った質問はまだありません。",
      updates: "回答が更新されました（{n}件）。",
      corrected: "修正済みの回答",
      team: "プロジェクトチームの回答",
      withdrawn: "取り下げられた回答",
    },
    en: {
      title: "Questions about the change",
      subtitle: "AI answers from company documents; the project team reviews them",
      launcher: "Ask a question",
      close: "Close",
      newChat: "Start a new conversation",
      welcome:
        "Ask anything you want to know or are worried about regarding the change. Each answer links to the company documents it is based on.",
      examples: "Example questions",
      inputLabel: "Your question",
      placeholder: "Type a question (Enter to send)",
      send: "Send",
      department: "Department (optional)",
      departmentNone: "Not specified",
      you: "Your question",
      answer: "Answer",
      thinking: "Writing an answer…",
      draft: "AI draft — under review",
      approved: "Approved answer",
      faq: "FAQ answer",
      extract: "Excerpt from the documents — under review",
      extractNote: "No AI was used: this is the passage of the company documents that matches; the project team is checking it.",
      related: "Did you mean:",
      abstain: "Sent to the project team",
      pending: "Awaiting review",
      draftNote: "Drafted by AI from company documents; the project team is checking it.",
      sources: "Sources",
      sourceLabel: "Source {n}: {title} (opens in a new tab)",
      feedbackAsk: "Was this answer helpful?",
      helpful: "Helpful",
      notHelpful: "Not helpful",
      comment: "Comment (optional)",
      commentHint: "What was missing, or what did you really want to know?",
      sendFeedback: "Send feedback",
      feedbackThanks: "Thank you, your feedback was sent.",
      feedbackFailed: "Your feedback could not be sent. Please try again.",
      offline: "Cannot reach the service. Check your connection and try again in a moment.",
      starting: "The service is starting up. Please try again in a moment.",
      rateLimited: "Too many questions in a short time. Please wait {s} seconds, then try again.",
      broken: "Something went wrong while answering. Please try again.",
      interrupted: "Your last question did not get an answer.",
      invalid: "The question could not be sent: {msg}",
      empty: "Please type a question.",
      tooLong: "Please keep your question under 2,000 characters (now {n}).",
      retry: "Retry",
      retryIn: "Retry ({s} s)",
      cleared: "The conversation was cleared.",
      mine: "My questions",
      mineEmpty: "You have not asked anything from this browser yet.",
      updates: "{n} of your answers were updated.",
      corrected: "Corrected answer",
      team: "Answer from the project team",
      withdrawn: "Withdrawn answer",
    },
  };

  const wanted = (options.lang || "auto").toLowerCase();
  const LANG =
    wanted === "ja" || wanted === "en" ? wanted : /^ja\b/i.test(navigator.language || "") ? "ja" : "en";
  const T = STRINGS[LANG];
  /** @type {Record<string, Record<string, string>>} */
  const STATES = {
    ja: {
      draft: "確認中",
      faq: "FAQの回答",
      approved: "承認済み",
      corrected: "修正済み",
      rejected: "取り下げ",
      sent_to_team: "担当者が確認中",
      answered_by_team: "担当者が回答",
    },
    en: {
      draft: "Under review",
      faq: "FAQ answer",
      approved: "Approved",
      corrected: "Corrected",
      rejected: "Withdrawn",
      sent_to_team: "With the project team",
      answered_by_team: "Answered by the team",
    },
  };
  /** @type {(template: string, values: Record<string, unknown>) => string} */
  const fmt = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
  const departments = (options.departments || "").split(",").map((d) => d.trim()).filter(Boolean);
  const suggestions = (options.suggestions || "").split("|").map((s) => s.trim()).filter(Boolean).slice(0, 4);

  // ---- small DOM helpers: every piece of text goes in through textContent ----------------------------------------

  /**
   * @template {keyof HTMLElementTagNameMap} K
   * @param {K} tag
   * @param {Record<string, any>} [props]
   * @param {Array<Node | string | false | null | undefined>} [children]
   * @returns {HTMLElementTagNameMap[K]}
   */
  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  const ICONS = {
    chat: "M4 5.5A1.5 1.5 0 0 1 5.5 4h13A1.5 1.5 0 0 1 20 5.5v9a1.5 1.5 0 0 1-1.5 1.5H10l-4.5 4v-4h0A1.5 1.5 0 0 1 4 14.5z",
    close: "M6 6l12 12M18 6L6 18",
    send: "M4 12l16-8-6 16-2.5-6.5z",
    reset: "M4 12a8 8 0 1 0 2.5-5.8L4 8.5M4 4v4.5h4.5",
    thumb: "M7 11v9H4v-9zM7 11l4-7c1.4 0 2.4 1.1 2.1 2.5L12.5 10H19a1.7 1.7 0 0 1 1.6 2l-1.3 6.3A2.2 2.2 0 0 1 17.2 20H7",
    retry: "M20 12a8 8 0 1 1-2.5-5.8L20 8.5M20 4v4.5h-4.5",
  };

  /** @param {keyof typeof ICONS} name @param {string} [extraClass] */
  function icon(name, extraClass) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon" + (extraClass ? " " + extraClass : ""));
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  // ---- styles ------------------------------------------------------------------------------------------------------

  const CSS = `
:host{all:initial}
.root{--_primary:var(--nw-primary,#0b5cad);--_on-primary:var(--nw-on-primary,var(--nw-auto-on-primary,#fff));
--_accent:var(--nw-accent,var(--nw-auto-accent,#0b5cad));--_bg:var(--nw-bg,#fff);--_fg:var(--nw-fg,#1f2933);
--_muted:var(--nw-muted,#52606d);--_line:var(--nw-line,#d9e2ec);--_soft:var(--nw-soft,#f4f6f9);
--_radius:var(--nw-radius,16px);--_focus:var(--nw-focus,#1f6feb);
font-family:var(--nw-font,system-ui,-apple-system,"Hiragino Sans","Hiragino Kaku Gothic ProN","Noto Sans JP","Noto Sans CJK JP","Yu Gothic UI",Meiryo,sans-serif);
font-size:15px;line-height:1.7;color:var(--_fg);-webkit-font-smoothing:antialiased}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
button,select,textarea{font:inherit;color:inherit}
button{cursor:pointer}
button:disabled{cursor:not-allowed;opacity:.6}
:focus-visible{outline:3px solid var(--_focus);outline-offset:2px}
.icon{width:20px;height:20px;fill:none;stroke:currentColor;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;flex:none}
.sr-only{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.launcher{position:fixed;z-index:var(--nw-z,2147483000);bottom:20px;right:20px;display:inline-flex;align-items:center;gap:8px;
min-height:48px;padding:12px 20px 12px 16px;border:0;border-radius:999px;background:var(--_primary);color:var(--_on-primary);
font-weight:700;box-shadow:0 6px 20px rgba(16,24,40,.25);transition:transform .15s}
.launcher:hover{transform:translateY(-1px)}
.left .launcher{right:auto;left:20px}
.panel{position:fixed;z-index:var(--nw-z,2147483000);bottom:84px;right:20px;width:min(400px,calc(100vw - 32px));
height:min(640px,calc(100vh - 104px));display:flex;flex-direction:column;background:var(--_bg);color:var(--_fg);
border-radius:var(--_radius);box-shadow:0 16px 48px rgba(16,24,40,.28);overflow:hidden;border:1px solid var(--_line)}
.left .panel{right:auto;left:20px}
@media (max-width:480px){.panel,.left .panel{inset:0;width:100%;height:100%;border-radius:0;border:0}}
.head{display:flex;align-items:center;gap:4px;padding:10px 8px 10px 16px;background:var(--_primary);color:var(--_on-primary)}
.head :focus-visible{outline-color:currentColor;outline-offset:-3px}
.titles{flex:1;min-width:0}
h2{margin:0;font-size:16px;font-weight:700;line-height:1.4}
.subtitle{margin:2px 0 0;font-size:12px;line-height:1.4}
.icon-btn{display:grid;place-items:center;width:40px;height:40px;flex:none;border:0;border-radius:10px;background:transparent}
.icon-btn:hover{background:rgba(127,127,127,.22)}
.log{flex:1;overflow-y:auto;overscroll-behavior:contain;padding:16px;display:flex;flex-direction:column;gap:14px;background:var(--_soft)}
.welcome{margin:0;color:var(--_fg);font-size:14px}
.examples{display:flex;flex-direction:column;align-items:flex-start;gap:6px;margin:8px 0 0;padding:0;list-style:none}
.examples-title{margin:12px 0 0;font-size:12px;font-weight:700;color:var(--_muted)}
.chip{border:1px solid var(--_accent);background:var(--_bg);color:var(--_accent);border-radius:999px;padding:4px 12px;font-size:13px;text-align:left}
.chip:hover{background:var(--_soft)}
.msg{max-width:100%;overflow-wrap:anywhere;word-break:normal}
.user{align-self:flex-end;max-width:85%;padding:8px 12px;border-radius:16px 16px 4px 16px;background:var(--_primary);color:var(--_on-primary);white-space:pre-wrap}
.bot{align-self:stretch;padding:10px 14px 12px;border-radius:16px 16px 16px 4px;background:var(--_bg);border:1px solid var(--_line)}
.badge{display:inline-flex;align-items:center;gap:6px;margin:0 0 6px;padding:1px 10px;border-radius:999px;font-size:12px;font-weight:700;
background:#eceff1;color:#37474f}
.badge.draft{background:#fff1cc;color:#6b4400}
.badge.approved{background:#dcf3e3;color:#14532d}
.badge.abstain{background:#e3ebfd;color:#1e3a8a}
.badge.faq{background:#dcf3e3;color:#14532d}
.badge.extract{background:#eceff1;color:#37474f}
.related{margin:8px 0 0;display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.related p{margin:0;font-size:13px}
.dots{display:inline-flex;gap:3px}
.dots i{width:5px;height:5px;border-radius:50%;background:currentColor;animation:nw-blink 1.2s infinite both}
.dots i:nth-child(2){animation-delay:.2s}.dots i:nth-child(3){animation-delay:.4s}
@keyframes nw-blink{0%,80%,100%{opacity:.25}40%{opacity:1}}
@media (prefers-reduced-motion:reduce){.dots i{animation:none}.launcher{transition:none}}
.body{white-space:normal}
.body p{margin:0 0 .6em}.body p:last-child{margin-bottom:0}
.body ul,.body ol{margin:.2em 0 .6em;padding-left:1.4em}
.streaming{white-space:pre-wrap}
.cite{font-size:.75em;vertical-align:super;line-height:0;color:var(--_accent);text-decoration:none;padding:0 1px;font-weight:700}
.cite:hover{text-decoration:underline}
.note{margin:8px 0 0;font-size:12px;color:var(--_muted);line-height:1.5}
.sources{margin:10px 0 0;padding-top:8px;border-top:1px solid var(--_line);font-size:13px;line-height:1.5}
.sources h3{margin:0 0 4px;font-size:12px;color:var(--_muted)}
.sources ol{margin:0;padding-left:1.5em}
.sources li{margin:2px 0}
.sources a{color:var(--_accent)}
.feedback{display:flex;flex-wrap:wrap;align-items:center;gap:6px;margin-top:10px;font-size:13px;color:var(--_muted)}
.thumb{display:grid;place-items:center;width:36px;height:36px;border:1px solid #7b8794;border-radius:10px;background:var(--_bg);color:var(--_fg)}
.thumb[aria-pressed="true"]{background:var(--_primary);border-color:var(--_primary);color:var(--_on-primary)}
.down .icon{transform:rotate(180deg)}
.fb-form{display:flex;flex-direction:column;gap:6px;width:100%;margin-top:6px}
.fb-form label{font-size:12px;color:var(--_fg);font-weight:700}
.fb-form textarea{min-height:64px}
.thanks,.fb-error{width:100%;margin:4px 0 0;font-size:13px}
.fb-error,.error-text{color:#a61b1b}
.error{align-self:stretch;padding:10px 14px;border-radius:12px;border:1px solid #f3b8b8;background:#fff5f5;font-size:14px}
.error-text{margin:0 0 8px}
.btn{display:inline-flex;align-items:center;gap:6px;min-height:36px;padding:6px 14px;border-radius:10px;border:1px solid var(--_primary);
background:var(--_primary);color:var(--_on-primary);font-size:14px;font-weight:700;align-self:flex-start}
.btn.secondary{background:var(--_bg);color:var(--_accent);border-color:var(--_accent)}
form.ask{display:flex;flex-direction:column;gap:6px;padding:10px 12px 12px;border-top:1px solid var(--_line);background:var(--_bg)}
.dept{display:flex;align-items:center;gap:8px;font-size:13px}
select{min-height:32px;padding:2px 8px;border:1px solid #7b8794;border-radius:8px;background:var(--_bg);max-width:60%}
.row{display:flex;align-items:flex-end;gap:8px}
textarea{display:block;width:100%;min-height:44px;max-height:140px;resize:none;padding:10px 12px;border:1px solid #7b8794;border-radius:12px;
background:var(--_bg);color:var(--_fg);line-height:1.5}
textarea::placeholder{color:#66717e}
.send{display:grid;place-items:center;width:44px;height:44px;flex:none;border:0;border-radius:12px;background:var(--_primary);color:var(--_on-primary)}
.hint{margin:0;font-size:12px;color:#a61b1b}
.badge.corrected,.badge.team{background:#dcf3e3;color:#14532d}
.badge.withdrawn{background:#fde2e2;color:#7f1d1d}
.notice{margin:0 0 8px;padding:6px 10px;border-left:4px solid var(--_accent);background:var(--_soft);font-size:13px;font-weight:700}
.mine-btn{flex:none;min-height:36px;padding:4px 10px;border:1px solid currentColor;border-radius:10px;background:transparent;font-size:13px}
.mine{max-height:45%;overflow-y:auto;padding:8px 12px;border-bottom:1px solid var(--_line);background:var(--_bg);font-size:14px}
.mine h3{margin:0 0 4px;font-size:13px}
.mine ul{margin:0;padding:0;list-style:none}
.mine li{padding:4px 0;border-top:1px solid var(--_line)}
.mine summary{cursor:pointer;overflow-wrap:anywhere}
.mine .badge{margin:0 0 0 6px}
.mine p.empty{margin:0;color:var(--_muted)}
`;

  // ---- state kept for the browser tab ------------------------------------------------------------------------------

  /** @returns {SavedState} */
  function loadState() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
      if (saved && Array.isArray(saved.turns)) return saved;
    } catch (_) {
      /* storage disabled or corrupt: start fresh */
    }
    return { open: null, department: "", turns: [] };
  }

  function newConversationId() {
    const random = crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    return "w-" + random.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 40);
  }

  const state = loadState();
  if (typeof state.conversation !== "string") state.conversation = newConversationId();

  // The previous turns a follow-up needs (the service takes at most 4): question, answer and its id.
  const HISTORY_TURNS = 4;
  function previousTurns() {
    const turns = [];
    const done = state.turns.slice(0, -1); // the question being asked is the last turn
    for (let i = 1; i < done.length; i++) {
      const q = done[i - 1];
      const a = done[i];
      if (q.role === "user" && a.role === "assistant" && a.id) {
        turns.push({ id: a.id, question: q.text.slice(0, MAX_CHARS), answer: String(a.answer || "").slice(0, 4000) });
      }
    }
    return turns.slice(-HISTORY_TURNS);
  }

  function saveState() {
    state.turns = state.turns.slice(-MAX_TURNS);
    try {
      sessionStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (_) {
      /* quota or privacy mode: the conversation just is not kept */
    }
  }

  /** @returns {FollowupLink[]} */
  function loadLinks() {
    try {
      const saved = JSON.parse(localStorage.getItem(LINKS_KEY) || "[]");
      if (Array.isArray(saved)) return saved.filter((l) => l && typeof l.token === "string").slice(-MAX_LINKS);
    } catch (_) {
      /* storage disabled or corrupt */
    }
    return [];
  }

  function saveLinks() {
    links = links.slice(-MAX_LINKS);
    try {
      localStorage.setItem(LINKS_KEY, JSON.stringify(links));
    } catch (_) {
      /* quota or privacy mode: follow-ups last as long as the page */
    }
  }

  let links = loadLinks();
  /** @type {Record<string, Followup>} */
  const followups = {}; // the latest check, by token; answers are not written to storage

  // ---- the DOM: host, shadow root, launcher and panel --------------------------------------------------------------

  const host = el("div", { id: "nemawashi-widget" });
  if (options.color) host.style.setProperty("--nw-primary", options.color);
  const shadow = host.attachShadow({ mode: "open" });
  if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
    const sheet = new CSSStyleSheet(); // not subject to a page's style-src CSP, unlike a <style> element
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.append(el("style", { text: CSS }));
  }

  const title = options.title || T.title;
  const root = el("div", { class: "root" + (options.position === "bottom-left" ? " left" : ""), lang: LANG });
  const launcher = el("button", {
    type: "button",
    class: "launcher",
    "aria-expanded": "false",
    "aria-controls": "nw-panel",
    "aria-haspopup": "dialog",
  });
  launcher.append(icon("chat"), el("span", { text: T.launcher }));

  const live = el("div", { class: "sr-only", "aria-live": "polite", "aria-atomic": "false", "data-nw-live": "" });
  const log = el("div", { class: "log", role: "region", tabindex: "0", "aria-label": title });
  const textarea = el("textarea", {
    id: "nw-question",
    rows: "1",
    maxlength: String(MAX_CHARS),
    placeholder: T.placeholder,
    "aria-describedby": "nw-hint",
    autocomplete: "off",
  });
  const sendButton = el("button", { type: "submit", class: "send", "aria-label": T.send, title: T.send }, [icon("send")]);
  const hint = el("p", { id: "nw-hint", class: "hint", hidden: true, "aria-live": "assertive" });
  const departmentSelect = departments.length
    ? el("select", { id: "nw-dept", onchange: () => ((state.department = /** @type {HTMLSelectElement} */ (departmentSelect).value), saveState()) }, [
        el("option", { value: "", text: T.departmentNone }),
        ...departments.map((d) => el("option", { value: d, text: d })),
      ])
    : null;
  if (departmentSelect) departmentSelect.value = departments.includes(state.department) ? state.department : "";

  const form = el("form", { class: "ask", onsubmit: onSubmit, novalidate: true }, [
    departmentSelect && el("div", { class: "dept" }, [el("label", { for: "nw-dept", text: T.department }), departmentSelect]),
    el("label", { for: "nw-question", class: "sr-only", text: T.inputLabel }),
    el("div", { class: "row" }, [textarea, sendButton]),
    hint,
  ]);
  const closeButton = el("button", {
    type: "button",
    class: "icon-btn",
    "aria-label": T.close,
    title: T.close,
    onclick: () => close(true),
  });
  closeButton.append(icon("close"));
  const resetButton = el("button", {
    type: "button",
    class: "icon-btn",
    "aria-label": T.newChat,
    title: T.newChat,
    onclick: clearConversation,
  });
  resetButton.append(icon("reset"));
  const mineButton = el("button", {
    type: "button",
    class: "mine-btn",
    "aria-expanded": "false",
    "aria-controls": "nw-mine",
    text: T.mine,
    onclick: toggleMine,
  });
  const mineBox = el("section", { id: "nw-mine", class: "mine", hidden: true, "aria-labelledby": "nw-mine-title" });

  const panel = el(
    "div",
    { id: "nw-panel", class: "panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "nw-title", hidden: true },
    [
      el("div", { class: "head" }, [
        el("div", { class: "titles" }, [
          el("h2", { id: "nw-title", text: title }),
          el("p", { class: "subtitle", text: T.subtitle }),
        ]),
        mineButton,
        resetButton,
        closeButton,
      ]),
      mineBox,
      log,
      form,
    ],
  );
  root.append(launcher, panel, live);
  shadow.append(root);

  // ---- colours: keep the primary colour's text readable (WCAG AA) whatever colour the page picks -------------------

  /** @param {number[]} rgb */
  function luminance(rgb) {
    const [r, g, b] = rgb.map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }

  function fitColours() {
    const probe = el("span", { hidden: true });
    probe.style.color = "var(--_primary)";
    root.append(probe);
    const rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || ["11", "92", "173"]).slice(0, 3).map(Number);
    probe.remove();
    const lum = luminance(rgb);
    const onWhite = 1.05 / (lum + 0.05);
    const onDark = (lum + 0.05) / (luminance([17, 24, 39]) + 0.05);
    host.style.setProperty("--nw-auto-on-primary", onWhite >= onDark ? "#fff" : "#111827");
    host.style.setProperty("--nw-auto-accent", onWhite >= 4.5 ? `rgb(${rgb.join(",")})` : "#1f2933");
  }

  // ---- opening and closing -----------------------------------------------------------------------------------------

  function isOpen() {
    return !panel.hidden;
  }

  /** @param {boolean} moveFocus */
  function open(moveFocus) {
    if (!isOpen()) {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      state.open = true;
      saveState();
      scrollToEnd(true);
      startChecks();
    }
    if (moveFocus) textarea.focus();
  }

  /** @param {boolean} returnFocus */
  function close(returnFocus) {
    if (!isOpen()) return;
    panel.hidden = true;
    clearInterval(checkTimer);
    launcher.setAttribute("aria-expanded", "false");
    state.open = false;
    saveState();
    if (returnFocus) launcher.focus();
  }

  launcher.addEventListener("click", () => (isOpen() ? close(true) : open(true)));
  // Escape closes the panel wherever focus is (focus goes back to the launcher only if it was in the widget).
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.isComposing && !event.defaultPrevented && isOpen()) {
      event.preventDefault();
      close(document.activeElement === host);
    }
  });
  // Tab cycles inside the open panel: after Send come the header buttons, the answers' citations and thumbs, and
  // the question box again (forward as well as backward); Escape leaves.
  panel.addEventListener("keydown", (event) => {
    if (event.key !== "Tab") return;
    const stops = focusStops();
    if (!stops.length) return;
    const first = stops[0];
    const last = stops[stops.length - 1];
    if (!event.shiftKey && shadow.activeElement === last) {
      event.preventDefault();
      first.focus();
    } else if (event.shiftKey && shadow.activeElement === first) {
      event.preventDefault();
      last.focus();
    }
  });

  /** @returns {HTMLElement[]} */
  function focusStops() {
    const selector = 'a[href],button:not([disabled]),textarea:not([disabled]),select,input,[tabindex]:not([tabindex="-1"])';
    return Array.from(panel.querySelectorAll(selector)).filter(
      (e) => e instanceof HTMLElement && !e.closest("[hidden]"),
    ).map((e) => /** @type {HTMLElement} */ (e));
  }
  document.addEventListener("click", (event) => {
    const opener = event.target instanceof Element && event.target.closest("[data-nemawashi-open]");
    if (opener) {
      event.preventDefault();
      open(true);
    }
  });

  // ---- the question box --------------------------------------------------------------------------------------------

  function autoGrow() {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight + 2, 140) + "px";
  }

  /** @param {string} [message] */
  function showHint(message) {
    hint.textContent = message || "";
    hint.hidden = !message;
  }

  textarea.addEventListener("input", () => {
    autoGrow();
    showHint("");
  });
  textarea.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a new line; Enter that confirms a Japanese IME conversion must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : onSubmit(event);
    }
  });

  let busy = false;
  /** @type {AbortController | null} */
  let controller = null;

  /** @param {Event} event */
  function onSubmit(event) {
    event.preventDefault();
    if (busy) return;
    const question = textarea.value.trim();
    if (!question) return showHint(T.empty);
    if (question.length > MAX_CHARS) return showHint(fmt(T.tooLong, { n: question.length }));
    const department = departmentSelect ? departmentSelect.value : "";
    textarea.value = "";
    autoGrow();
    /** @type {UserTurn} */
    const turn = { role: "user", text: question, department };
    state.turns.push(turn);
    saveState();
    removeWelcome();
    for (const stale of log.querySelectorAll("[data-nw-error]")) stale.remove(); // a new question replaces old retries
    log.append(renderUser(turn));
    ask(question, department);
  }

  // ---- talking to the service --------------------------------------------------------------------------------------

  /** @param {string} block @returns {StreamEvent | null} */
  function parseEvent(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return { name, data: JSON.parse(data.join("\n")) };
    } catch (_) {
      return null;
    }
  }

  // Server-Sent Events over fetch (EventSource cannot POST): calls onEvent for each event as its bytes arrive.
  /**
   * @param {Response} response
   * @param {(event: StreamEvent) => void} onEvent
   * @param {() => void} onBytes
   */
  async function readEvents(response, onEvent, onBytes) {
    const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      onBytes();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      buffer = buffer.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) onEvent(event);
      }
      if (done) {
        const last = parseEvent(buffer);
        if (last) onEvent(last);
        return;
      }
    }
  }

  /** @param {Response} response @param {any} body */
  function retryAfterSeconds(response, body) {
    const header = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    const fromBody = body && body.detail && Number(body.detail.retry_after);
    return Math.max(1, header > 0 ? header : fromBody > 0 ? fromBody : 30);
  }

  /** @param {string} question @param {string} department */
  async function ask(question, department) {
    busy = true;
    sendButton.disabled = true;
    live.textContent = "";
    const view = renderPending();
    log.append(view.node);
    scrollToEnd(true);
    controller = new AbortController();
    const mine = controller;
    let stallTimer = 0;
    const stalled = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => mine.abort(), STALL_MS);
    };
    stalled();
    let finished = false;
    try {
      const response = await fetch(BASE + "/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({
          question,
          department: department || null,
          source: "widget",
          stream: true,
          conversation_id: state.conversation,
          history: previousTurns(),
        }),
        credentials: "omit",
        signal: mine.signal,
      });
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        if (response.status === 429) return fail(view, { kind: "rateLimited", wait: retryAfterSeconds(response, body) });
        if (response.status === 503) return fail(view, { kind: "starting" });
        if (response.status === 422 && body && body.error) return fail(view, { kind: "invalid", message: body.error });
        return fail(view, { kind: response.status >= 500 ? "broken" : "offline" });
      }
      await readEvents(
        response,
        ({ name, data }) => {
          if (finished) return;
          if (name === "delta" && typeof data.text === "string") view.append(data.text);
          else if (name === "done") {
            finished = true;
            finish(view, data);
          } else if (name === "error") {
            finished = true;
            fail(view, { kind: "broken" });
          }
        },
        stalled,
      );
      if (!finished) fail(view, { kind: "broken" });
    } catch (error) {
      if (mine === controller && !finished) fail(view, { kind: error && error.name === "AbortError" ? "broken" : "offline" });
    } finally {
      clearTimeout(stallTimer);
      if (mine === controller) {
        busy = false;
        sendButton.disabled = false;
        controller = null;
      }
    }
  }

  /** @param {PendingView} view @param {any} result */
  function finish(view, result) {
    /** @type {AnswerTurn} */
    const turn = {
      role: "assistant",
      id: String(result.id || ""),
      answer: String(result.answer || ""),
      citations: Array.isArray(result.citations) ? result.citations : [],
      mode: result.mode,
      status: result.status,
      related: Array.isArray(result.related) ? result.related : [],
      lang: result.lang === "en" ? "en" : "ja",
      feedback: null,
    };
    const asked = state.turns[state.turns.length - 1];
    if (typeof result.followup_url === "string" && turn.id) {
      const token = result.followup_url.split("/").pop() || "";
      links.push({ token, id: turn.id, question: asked && asked.role === "user" ? asked.text : "", state: firstState(turn) });
      saveLinks();
      if (!mineBox.hidden) renderMine();
    }
    state.turns.push(turn);
    saveState();
    const node = renderAnswer(turn);
    view.node.replaceWith(node);
    view.finishAnnouncement(spoken(turn.answer), labelFor(turn).text);
    scrollToEnd(false);
  }

  /** @param {PendingView} view @param {Problem} problem */
  function fail(view, problem) {
    const last = state.turns[state.turns.length - 1];
    const node = renderError(problem, last && last.role === "user" ? last : null);
    // Text that streamed in before the failure was never checked by the service: it is removed, not kept.
    view.node.replaceWith(node);
    announce(errorMessage(problem));
    scrollToEnd(true);
  }

  /** @param {Problem} problem @returns {string} */
  function errorMessage(problem) {
    if (problem.kind === "rateLimited") return fmt(T.rateLimited, { s: problem.wait });
    if (problem.kind === "invalid") return fmt(T.invalid, { msg: problem.message });
    return /** @type {Record<string, string>} */ (T)[problem.kind] || T.broken;
  }

  // ---- feedback ----------------------------------------------------------------------------------------------------

  /** @param {AnswerTurn} turn @param {boolean | null} helpful @param {string} comment */
  async function sendFeedback(turn, helpful, comment) {
    const response = await fetch(BASE + "/v1/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: turn.id, helpful, comment: comment || null }),
      credentials: "omit",
    });
    if (!response.ok) throw new Error("feedback " + response.status);
    turn.feedback = { helpful, sent: true };
    saveState();
  }

  // ---- rendering ---------------------------------------------------------------------------------------------------

  /** @param {string} text */
  function announce(text) {
    live.textContent = "";
    live.append(document.createTextNode(text));
  }

  // What a screen reader reads: the answer without its [n] markers (the sources are listed after it).
  /** @param {string} text */
  function spoken(text) {
    return text.replace(/\[\d{1,3}\]/g, "");
  }

  /** @param {AnswerTurn} turn @returns {{ kind: string, text: string }} */
  function labelFor(turn) {
    const reviewed = turn.review && turn.review.state;
    if (reviewed === "corrected") return { kind: "corrected", text: T.corrected };
    if (reviewed === "answered_by_team") return { kind: "team", text: T.team };
    if (reviewed === "rejected") return { kind: "withdrawn", text: T.withdrawn };
    if (reviewed === "approved") return { kind: "approved", text: T.approved };
    if (turn.status === "pending_review") return { kind: "pending", text: T.pending };
    if (turn.mode === "faq") return { kind: "faq", text: T.faq };
    if (turn.mode === "approved" || turn.status === "approved") return { kind: "approved", text: T.approved };
    if (turn.mode === "abstain") return { kind: "abstain", text: T.abstain };
    if (turn.mode === "extractive") return { kind: "extract", text: T.extract };
    return { kind: "draft", text: T.draft };
  }

  /** @param {unknown} url */
  function kbHref(url) {
    if (typeof url !== "string" || !url.startsWith("/") || url.startsWith("//")) return null;
    try {
      const href = new URL(BASE + url);
      return href.protocol === "https:" || href.protocol === "http:" ? href.href : null;
    } catch (_) {
      return null;
    }
  }

  /** @param {Citation} citation @param {string} text @param {string} className */
  function citationLink(citation, text, className) {
    const href = kbHref(citation.url);
    const label = fmt(T.sourceLabel, { n: citation.n, title: citation.title });
    if (!href) return el("span", { class: className, text });
    return el("a", { href, target: "_blank", rel: "noopener noreferrer", class: className, "aria-label": label, text });
  }

  // A tiny Markdown subset built from DOM nodes: paragraphs, line breaks, "- " lists, "1. " lists, **bold**, [n].
  /** @param {HTMLElement} parent @param {string} text @param {Citation[]} citations */
  function renderInline(parent, text, citations) {
    const pattern = /\*\*([^*\n]+)\*\*|\[(\d{1,3})\]/g;
    let at = 0;
    for (let match; (match = pattern.exec(text)); ) {
      if (match.index > at) parent.append(document.createTextNode(text.slice(at, match.index)));
      if (match[1] !== undefined) parent.append(el("strong", { text: match[1] }));
      else {
        const citation = citations.find((c) => Number(c.n) === Number(match[2]));
        parent.append(citation ? citationLink(citation, match[0], "cite") : document.createTextNode(match[0]));
      }
      at = pattern.lastIndex;
    }
    if (at < text.length) parent.append(document.createTextNode(text.slice(at)));
  }

  /** @param {string} text @param {Citation[]} citations */
  function renderRich(text, citations) {
    const body = el("div", { class: "body" });
    for (const block of text.trim().split(/\n\s*\n/)) {
      const lines = block.split("\n").filter((line) => line.trim());
      if (!lines.length) continue;
      const bullet = /^\s*(?:[-*・•])\s+/;
      const numbered = /^\s*\d{1,2}[.)．]\s+/;
      const kind = lines.every((l) => bullet.test(l)) ? "ul" : lines.every((l) => numbered.test(l)) ? "ol" : "p";
      if (kind === "p") {
        const paragraph = el("p");
        lines.forEach((line, i) => {
          if (i) paragraph.append(el("br"));
          renderInline(paragraph, line, citations);
        });
        body.append(paragraph);
      } else {
        const list = el(kind);
        for (const line of lines) {
          const item = el("li");
          renderInline(item, line.replace(kind === "ul" ? bullet : numbered, ""), citations);
          list.append(item);
        }
        body.append(list);
      }
    }
    return body;
  }

  /** @param {UserTurn} turn */
  function renderUser(turn) {
    return el("div", { class: "msg user" }, [el("span", { class: "sr-only", text: T.you + ": " }), document.createTextNode(turn.text)]);
  }

  /** @returns {PendingView} */
  function renderPending() {
    const badge = el("p", { class: "badge" }, [
      el("span", { text: T.thinking }),
      el("span", { class: "dots", "aria-hidden": "true" }, [el("i"), el("i"), el("i")]),
    ]);
    const text = el("div", { class: "body streaming", "data-nw-streaming": "" });
    const node = el("div", { class: "msg bot", "aria-busy": "true", "data-nw-answer": "pending" }, [badge, text]);
    let streamed = "";
    let spokenSoFar = "";
    announce(T.thinking);
    /** @param {number} upTo */
    const speak = (upTo) => {
      const next = spoken(streamed.slice(0, upTo));
      if (next.length > spokenSoFar.length && next.startsWith(spokenSoFar)) {
        live.append(document.createTextNode(next.slice(spokenSoFar.length)));
        spokenSoFar = next;
      }
    };
    return {
      node,
      append(delta) {
        streamed += delta;
        text.append(document.createTextNode(delta));
        // Whole sentences go to the live region, so a screen reader reads phrases rather than 16-character pieces.
        const end = Math.max(...["。", "！", "？", ". ", "! ", "? ", "\n"].map((mark) => streamed.lastIndexOf(mark)));
        if (end >= 0) speak(end + 1);
        scrollToEnd(false);
      },
      finishAnnouncement(finalText, label) {
        if (finalText.startsWith(spokenSoFar)) live.append(document.createTextNode(finalText.slice(spokenSoFar.length)));
        else announce(finalText);
        live.append(document.createTextNode(" (" + label + ")"));
      },
    };
  }

  /** @param {AnswerTurn} turn */
  function renderAnswer(turn) {
    const label = labelFor(turn);
    const showSources = label.kind !== "pending" && turn.citations.length > 0;
    const node = el("div", { class: "msg bot", lang: turn.lang, "data-nw-answer": turn.id, "data-nw-label": label.kind }, [
      el("span", { class: "sr-only", lang: LANG, text: T.answer + ": " }),
      el("p", { class: "badge " + label.kind, text: label.text }),
      turn.review && turn.review.notice && el("p", { class: "notice", "data-nw-notice": "", text: turn.review.notice }),
      renderRich(turn.answer, turn.citations),
      label.kind === "draft" && el("p", { class: "note", lang: LANG, text: T.draftNote }),
      label.kind === "extract" && el("p", { class: "note", lang: LANG, text: T.extractNote }),
    ]);
    const related = Array.isArray(turn.related) ? turn.related : [];
    if (label.kind !== "pending" && related.length) {
      // もしかして: a click asks that FAQ question, which the service answers with the curated answer.
      const box = el("div", { class: "related", lang: turn.lang, "data-nw-related": "" }, [el("p", { lang: LANG, text: T.related })]);
      for (const item of related) {
        const chip = el("button", { type: "button", class: "chip", text: String(item.question || "") });
        chip.addEventListener("click", () => {
          if (busy) return;
          textarea.value = String(item.question || "");
          form.requestSubmit ? form.requestSubmit() : onSubmit(new Event("submit"));
        });
        box.append(chip);
      }
      node.append(box);
    }
    if (showSources) node.append(renderSources(turn.citations));
    if (label.kind !== "pending" && turn.id) node.append(renderFeedback(turn));
    return node;
  }

  /** @param {Citation[]} citations */
  function renderSources(citations) {
    const list = el("ol");
    for (const citation of citations) list.append(el("li", {}, [citationLink(citation, String(citation.title || citation.doc_id), "")]));
    return el("div", { class: "sources", lang: LANG }, [el("h3", { text: T.sources }), list]);
  }

  // ---- my questions: follow-up links, checked in one request -------------------------------------------------------

  /** @param {AnswerTurn} turn */
  function firstState(turn) {
    if (turn.mode === "faq" || turn.mode === "approved") return turn.mode;
    return turn.mode === "abstain" ? "sent_to_team" : "draft";
  }

  let checking = false;
  let checkTimer = 0;
  let etag = "";

  function startChecks() {
    checkFollowups();
    clearInterval(checkTimer);
    checkTimer = setInterval(checkFollowups, CHECK_MS);
  }

  async function checkFollowups() {
    if (checking || !links.length) return;
    checking = true;
    const sent = links.slice();
    try {
      /** @type {Record<string, string>} */
      const headers = { "Content-Type": "application/json" };
      if (etag) headers["If-None-Match"] = etag;
      const response = await fetch(BASE + "/v1/followups/check", {
        method: "POST",
        headers,
        body: JSON.stringify({ tokens: sent.map((l) => l.token) }),
        credentials: "omit",
      });
      if (response.status === 304 || !response.ok) return;
      etag = response.headers.get("ETag") || "";
      const body = await response.json();
      applyFollowups(sent, Array.isArray(body.results) ? body.results : []);
    } catch (_) {
      /* offline or refused: the next check tries again */
    } finally {
      checking = false;
    }
  }

  /** @param {FollowupLink[]} sent @param {Array<Followup | null>} results */
  function applyFollowups(sent, results) {
    let updated = 0;
    sent.forEach((link, i) => {
      const found = results[i];
      if (found === null) links = links.filter((l) => l !== link); // unknown or revoked: forget it
      if (!found) return;
      followups[link.token] = found;
      const turn = /** @type {AnswerTurn | undefined} */ (state.turns.find((t) => t.role === "assistant" && t.id === found.id));
      const fresh = found.changed && link.state !== found.state;
      const stale = found.changed && turn && (!turn.review || turn.review.state !== found.state || turn.answer !== found.answer);
      if (turn && stale) {
        turn.answer = found.answer;
        turn.citations = Array.isArray(found.citations) ? found.citations : [];
        turn.review = { state: found.state, notice: found.notice };
        const shown = Array.from(log.querySelectorAll("[data-nw-answer]")).find((n) => n.getAttribute("data-nw-answer") === turn.id);
        if (shown) shown.replaceWith(renderAnswer(turn));
      }
      if (fresh || stale) updated += 1;
      link.state = found.state;
    });
    saveLinks();
    saveState();
    if (!mineBox.hidden) renderMine();
    if (updated) announce(fmt(T.updates, { n: updated }));
  }

  function toggleMine() {
    mineBox.hidden = !mineBox.hidden;
    mineButton.setAttribute("aria-expanded", String(!mineBox.hidden));
    if (!mineBox.hidden) {
      renderMine();
      checkFollowups();
    }
  }

  function renderMine() {
    const list = el("ul");
    for (const link of links.slice().reverse()) {
      const found = followups[link.token];
      const stateName = STATES[LANG][link.state] || link.state;
      const summary = el("summary", {}, [document.createTextNode(link.question), el("span", { class: "badge", text: stateName })]);
      const item = el("details", { "data-nw-followup": link.state }, [summary]);
      if (found) {
        const shown = el("div", { lang: found.lang === "en" ? "en" : "ja" }, [
          found.notice && el("p", { class: "notice", text: found.notice }),
          renderRich(found.answer, found.citations || []),
        ]);
        if (found.citations && found.citations.length) shown.append(renderSources(found.citations));
        item.append(shown);
      }
      list.append(el("li", {}, [item]));
    }
    mineBox.replaceChildren(
      el("h3", { id: "nw-mine-title", text: T.mine }),
      links.length ? list : el("p", { class: "empty", text: T.mineEmpty }),
    );
  }

  /** @param {AnswerTurn} turn */
  function renderFeedback(turn) {
    const box = el("div", { class: "feedback", lang: LANG });
    if (turn.feedback && turn.feedback.sent) {
      box.append(el("p", { class: "thanks", text: T.feedbackThanks }));
      return box;
    }
    const up = el("button", { type: "button", class: "thumb up", "aria-pressed": "false", "aria-label": T.helpful, title: T.helpful }, [icon("thumb")]);
    const down = el("button", { type: "button", class: "thumb down", "aria-pressed": "false", "aria-label": T.notHelpful, title: T.notHelpful }, [
      icon("thumb"),
    ]);
    const commentId = "nw-fb-" + turn.id;
    const comment = el("textarea", { id: commentId, rows: "2", maxlength: "2000", placeholder: T.commentHint });
    const error = el("p", { class: "fb-error", role: "alert", hidden: true, text: T.feedbackFailed });
    const submit = el("button", { type: "submit", class: "btn", text: T.sendFeedback });
    /** @type {boolean | null} */
    let helpful = null;
    const fbForm = el("form", { class: "fb-form", hidden: true }, [el("label", { for: commentId, text: T.comment }), comment, submit, error]);
    /** @param {boolean} value */
    const choose = (value) => {
      helpful = value;
      up.setAttribute("aria-pressed", String(value));
      down.setAttribute("aria-pressed", String(!value));
      fbForm.hidden = false;
      comment.focus();
    };
    up.addEventListener("click", () => choose(true));
    down.addEventListener("click", () => choose(false));
    fbForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        await sendFeedback(turn, helpful, comment.value.trim());
        const thanks = el("p", { class: "thanks", tabindex: "-1", text: T.feedbackThanks });
        box.replaceChildren(thanks);
        thanks.focus();
        announce(T.feedbackThanks);
      } catch (_) {
        error.hidden = false;
        submit.disabled = false;
      }
    });
    box.append(el("span", { text: T.feedbackAsk }), up, down, fbForm);
    return box;
  }

  /** @param {Problem} problem @param {UserTurn | null} questionTurn */
  function renderError(problem, questionTurn) {
    const retry = el("button", { type: "button", class: "btn secondary" }, [icon("retry"), el("span", { text: T.retry })]);
    const node = el("div", { class: "msg error", "data-nw-error": problem.kind }, [el("p", { class: "error-text", text: errorMessage(problem) })]);
    if (!questionTurn) return node;
    node.append(retry);
    if (problem.kind === "rateLimited") {
      retry.disabled = true;
      let left = problem.wait;
      const label = /** @type {ChildNode} */ (retry.lastChild);
      label.textContent = fmt(T.retryIn, { s: left });
      const timer = setInterval(() => {
        left -= 1;
        label.textContent = left > 0 ? fmt(T.retryIn, { s: left }) : T.retry;
        if (left <= 0) {
          clearInterval(timer);
          retry.disabled = false;
        }
      }, 1000);
    }
    retry.addEventListener("click", () => {
      if (busy) return;
      node.remove();
      ask(questionTurn.text, questionTurn.department);
      textarea.focus();
    });
    return node;
  }

  function renderWelcome() {
    const box = el("div", { class: "welcome-box", "data-nw-welcome": "" }, [el("p", { class: "welcome", text: T.welcome })]);
    if (suggestions.length) {
      const list = el("ul", { class: "examples" });
      for (const question of suggestions) {
        const chip = el("button", { type: "button", class: "chip", text: question });
        chip.addEventListener("click", () => {
          textarea.value = question;
          form.requestSubmit ? form.requestSubmit() : onSubmit(new Event("submit"));
          textarea.focus();
        });
        list.append(el("li", {}, [chip]));
      }
      box.append(el("p", { class: "examples-title", text: T.examples }), list);
    }
    return box;
  }

  function removeWelcome() {
    const welcome = log.querySelector("[data-nw-welcome]");
    if (welcome) welcome.remove();
  }

  function renderConversation() {
    log.replaceChildren();
    if (!state.turns.length) log.append(renderWelcome());
    state.turns.forEach((turn, i) => {
      if (turn.role === "user") {
        log.append(renderUser(turn));
        const next = state.turns[i + 1];
        if (!next || next.role !== "assistant") log.append(renderError({ kind: "interrupted" }, turn));
      } else if (turn.role === "assistant") log.append(renderAnswer(turn));
    });
  }

  function clearConversation() {
    if (controller) controller.abort();
    controller = null;
    busy = false;
    sendButton.disabled = false;
    state.turns = [];
    state.conversation = newConversationId();
    saveState();
    renderConversation();
    announce(T.cleared);
    textarea.focus();
  }

  /** @param {boolean} force */
  function scrollToEnd(force) {
    const nearEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    if (force || nearEnd) log.scrollTop = log.scrollHeight;
  }

  // ---- start -------------------------------------------------------------------------------------------------------

  function start() {
    document.body.prepend(host); // first in the tab order: the launcher is fixed on screen, so this moves nothing
    fitColours();
    renderConversation();
    const startOpen = state.open === null ? options.open === "true" : state.open;
    if (startOpen) open(false); // opened for the reader, without taking focus away from the page
  }

  page.nemawashiWidget = { open: () => open(true), close: () => close(true), toggle: () => (isOpen() ? close(true) : open(true)) };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start, { once: true });
})();
