// A small element builder: text is always set as text, never parsed as HTML.
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const fmtDate = (iso: string | null | undefined) =>
  iso ? new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', timeZone: 'UTC' }).format(new Date(iso.length === 10 ? `${iso}T00:00:00Z` : iso)) : '—';
export const fmtDateTime = (iso: string | null | undefined) =>
  iso ? new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short' }).format(new Date(iso)) : '—';
export const fmtNum = (n: number) => new Intl.NumberFormat('en-GB').format(n);

export const STATUS_LABEL: Record<string, string> = {
  pending: 'Pending', in_progress: 'In progress', delayed: 'Delayed', implemented: 'Implemented', cancelled: 'Cancelled',
  signed: 'Signed', in_implementation: 'In implementation', terminated: 'Terminated', scheduled: 'Scheduled', held: 'Held',
};
export const statusLabel = (s: string) => STATUS_LABEL[s] ?? s;
export const sectorLabel = (s: string) => s.replace(/[_-]+/g, ' ').replace(/^./, (c) => c.toUpperCase());

export function badge(status: string, overdue = false): HTMLElement {
  return h('span', { class: `badge badge-${status}${overdue ? ' badge-overdue' : ''}` }, statusLabel(status), overdue ? ' · overdue' : '');
}
