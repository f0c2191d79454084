// The dashboard's style sheet: plain CSS, light and dark, tables that turn into labelled rows
// on a phone, and states that carry a word as well as a colour.
export const STYLE_CSS = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --card: #f6f8fa;
  --good: #1a7f37; --warn: #9a6700; --bad: #cf222e; --accent: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9aa4af; --line: #30363d; --card: #161b22;
    --good: #3fb950; --warn: #d29922; --bad: #f85149; --accent: #4493f8; }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; padding: 0.75rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; overflow-wrap: anywhere; }
nav { padding: 0.5rem 1rem; display: flex; flex-wrap: wrap; gap: 0.75rem; border-bottom: 1px solid var(--line); }
main { max-width: 1240px; margin: 0 auto; padding: 0.5rem 1rem 2rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 1rem; margin: 1rem 0; min-width: 0; }
h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
a { color: var(--accent); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; margin: 0 0 0.5rem; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; display: flex; flex-wrap: wrap; gap: 0.4rem; align-items: baseline; overflow-wrap: anywhere; min-width: 0; }
.badge { display: inline-block; padding: 0 0.45em; border-radius: 4px; border: 1px solid currentColor; font-size: 0.85em; font-weight: 600; white-space: nowrap; }
.badge.good { color: var(--good); } .badge.warn { color: var(--warn); } .badge.bad { color: var(--bad); } .badge.neutral { color: var(--muted); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.25rem; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
th { color: var(--muted); font-weight: 600; font-size: 0.9em; white-space: nowrap; }
.buttons { display: flex; flex-wrap: wrap; gap: 0.5rem; margin: 0.75rem 0 0.25rem; }
button { font: inherit; padding: 0.4rem 0.9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; min-height: 2.25rem; }
button.danger { background: var(--bad); border-color: var(--bad); }
button.quiet { background: transparent; color: var(--fg); border-color: var(--line); }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.steps { display: flex; flex-wrap: wrap; gap: 0.4rem; padding: 0; margin: 0; list-style: none; counter-reset: step; }
.steps li { counter-increment: step; border: 1px solid var(--line); border-radius: 6px; padding: 0.2rem 0.5rem; background: var(--bg); }
.steps li::before { content: counter(step) ". "; color: var(--muted); }
.steps li.current { border: 2px solid var(--warn); font-weight: 600; }
.steps li.done { color: var(--muted); }
.share { display: inline-flex; align-items: center; gap: 0.4rem; min-width: 7rem; }
.share .bar { display: inline-block; height: 0.6rem; background: var(--accent); border-radius: 2px; max-width: 4rem; min-width: 1px; }
.headline { font-size: 1.05rem; margin: 0.25rem 0; display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: baseline; }
.next { border-left: 4px solid var(--accent); padding-left: 0.6rem; }
.progress { margin: 0; padding: 0; list-style: none; max-height: 16rem; overflow-y: auto; font-size: 0.92em; }
.progress time { color: var(--muted); font-variant-numeric: tabular-nums; }
.result { min-height: 1.4em; margin: 0.5rem 0; font-weight: 600; overflow-wrap: anywhere; }
.result:empty { min-height: 0; margin: 0; }
.result.good { color: var(--good); } .result.bad { color: var(--bad); }
dialog { border: 1px solid var(--line); border-radius: 8px; background: var(--card); color: var(--fg); max-width: min(32rem, calc(100vw - 2rem)); }
dialog::backdrop { background: rgb(0 0 0 / 45%); }
input { font: inherit; padding: 0.35rem 0.5rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); width: 100%; max-width: 24rem; }
.login { max-width: 26rem; margin: 4rem auto; }
@media (max-width: 640px) {
  main { padding: 0.25rem 0.5rem 1.5rem; }
  section { padding: 0.6rem; }
  .facts { grid-template-columns: 1fr; }
  .facts dt { margin-top: 0.3rem; }
  table, thead, tbody, tr, td, caption { display: block; width: 100%; }
  thead { position: absolute; left: -9999px; }
  tr { border-bottom: 2px solid var(--line); padding: 0.3rem 0; }
  td { border: 0; padding: 0.1rem 0; display: grid; grid-template-columns: 8.5rem 1fr; gap: 0.5rem; }
  td::before { content: attr(data-label); color: var(--muted); font-size: 0.9em; }
}
`;
