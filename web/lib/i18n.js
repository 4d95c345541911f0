// web/lib/i18n.js - UI text in Chinese and English for every page.
//
// Each page registers its own strings with addMessages({en:{...},
// zh:{...}}) and reads them with t(key, vars); "{name}" in a string is
// replaced by vars.name. The language follows the browser's (zh* -> zh,
// anything else -> en) until the user picks one, which is kept in
// localStorage under "chatcore.lang". A change fires onLangChange
// listeners so pages can re-render. Pages of our own call
// bindDocumentLang() so <html lang> follows too; the widget, a guest on
// someone else's page, does not.

const dict = { en: {}, zh: {} };
const listeners = new Set();
const STORE_KEY = 'chatcore.lang';

function browserLang() {
    const langs = navigator.languages && navigator.languages.length
        ? navigator.languages : [navigator.language || 'en'];
    return String(langs[0]).toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

function storedLang() {
    try {
        const v = localStorage.getItem(STORE_KEY);
        return v === 'zh' || v === 'en' ? v : null;
    } catch {
        return null; // storage blocked (privacy mode, sandboxed iframe)
    }
}

let current = storedLang() || browserLang();
let docBound = false;

export function addMessages(m) {
    for (const lang of Object.keys(dict))
        Object.assign(dict[lang], m[lang] || {});
}

export function getLang() {
    return current;
}

export function setLang(lang) {
    if (lang !== 'zh' && lang !== 'en')
        return;
    current = lang;
    try {
        localStorage.setItem(STORE_KEY, lang);
    } catch { /* not kept; still switched for this page */ }
    applyDocLang();
    for (const fn of listeners)
        fn(lang);
}

export function toggleLang() {
    setLang(current === 'zh' ? 'en' : 'zh');
}

export function onLangChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
}

// A missing key falls back to English, then to the key itself, so a gap
// in a dictionary shows up as readable text rather than "undefined".
export function t(key, vars) {
    let s = dict[current][key] ?? dict.en[key] ?? key;
    if (vars)
        s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
}

// Fill every element carrying data-i18n="key" (text) or
// data-i18n-attr="attr:key[,attr:key]" (attributes such as placeholder,
// aria-label, title) under root.
export function translate(root) {
    for (const el of root.querySelectorAll('[data-i18n]'))
        el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll('[data-i18n-attr]')) {
        for (const pair of el.dataset.i18nAttr.split(',')) {
            const [attr, key] = pair.split(':').map((s) => s.trim());
            if (attr && key)
                el.setAttribute(attr, t(key));
        }
    }
}

function applyDocLang() {
    if (docBound)
        document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}

export function bindDocumentLang() {
    docBound = true;
    applyDocLang();
}
