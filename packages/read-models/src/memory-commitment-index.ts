// The memory store's commitment index: one row per commitment, kept in sorted lists (all, open,
// closed, by status, by party, by sector) in the list order (due date, commitment id, agreement
// id), so a filtered page is a binary search plus a walk, not a scan and a sort of every
// commitment. Rows carry only what filters and ordering read; a row whose indexed fields change
// is retired and replaced, and each list drops retired rows and merges new ones lazily, on the
// next read (or once enough changes piled up), so a rebuild pays nothing per event for ordering.
// "Overdue" depends on the instant asked: open commitments due before that day are a prefix of
// the open list, the rest a suffix of all, so it is served by the same binary searches.
import { type CommitmentState, type ExistingAgreement } from '@cm/domain';
import { UNDATED, decodeCursor, encodeCursor, foldText, type CommitmentFilter, type CommitmentListItem, type Page } from './queries.js';
import { commitmentView } from './views.js';

export type CommitmentRow = {
  readonly due: string;
  readonly cid: string;
  readonly aid: string;
  readonly status: CommitmentState['status'];
  readonly party: string;
  readonly sector: string;
  readonly institution: string;
  /** Folded institution, for the substring filter: an index into the index's distinct folded institutions. */
  readonly inst: number;
  /** Tie-breakers equal keys get in the reference scan: agreement insertion order, then position in the agreement. */
  readonly ord: number;
  readonly pos: number;
  /** The current documents: replaced in place when nothing indexed changed. */
  c: CommitmentState;
  a: ExistingAgreement;
  dead: boolean;
};

const isOpen = (status: string) => status !== 'implemented' && status !== 'cancelled';

export function compareRows(x: CommitmentRow, y: CommitmentRow): number {
  if (x.due !== y.due) return x.due < y.due ? -1 : 1;
  if (x.cid !== y.cid) return x.cid < y.cid ? -1 : 1;
  if (x.aid !== y.aid) return x.aid < y.aid ? -1 : 1;
  return x.ord - y.ord || x.pos - y.pos;
}

/** The row's list key compared with a cursor's, as the reference pagination does. */
function compareKey(x: CommitmentRow, key: readonly string[]): number {
  const k0 = key[0]!;
  if (x.due !== k0) return x.due < k0 ? -1 : 1;
  const k1 = key[1]!;
  if (x.cid !== k1) return x.cid < k1 ? -1 : 1;
  const k2 = key[2]!;
  if (x.aid !== k2) return x.aid < k2 ? -1 : 1;
  return 0;
}

/** First index in [lo, hi) where `past(row)` holds, given it holds for a suffix. */
function firstWhere(rows: readonly CommitmentRow[], lo: number, hi: number, past: (r: CommitmentRow) => boolean): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (past(rows[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A sorted list that takes additions and retirements cheaply and orders them when read. */
class SortedRows {
  private sorted: CommitmentRow[] = [];
  private added: CommitmentRow[] = [];
  private retired: CommitmentRow[] = [];
  /** Rows the list holds once settled. */
  size = 0;

  add(row: CommitmentRow): void {
    this.added.push(row);
    this.size++;
    this.settleIfLarge();
  }

  retire(row: CommitmentRow): void {
    this.retired.push(row);
    this.size--;
    this.settleIfLarge();
  }

  /** Pending work never outgrows the list itself, so memory stays proportional to the rows. */
  private settleIfLarge(): void {
    if (this.added.length + this.retired.length > 1024 + this.sorted.length) this.rows();
  }

  rows(): readonly CommitmentRow[] {
    if (this.added.length === 0 && this.retired.length === 0) return this.sorted;
    const fresh = this.added.filter((r) => !r.dead).sort(compareRows);
    this.added = [];
    // A few retired rows are found by binary search (a live write); many, by one pass (a rebuild).
    const kept = this.retired.length > 16 ? this.sorted.filter((r) => !r.dead) : removeAll(this.sorted, this.retired);
    this.retired = [];
    if (fresh.length === 0) this.sorted = kept;
    else if (fresh.length <= 16) this.sorted = insertAll(kept, fresh);
    else this.sorted = merge(kept, fresh);
    return this.sorted;
  }
}

function removeAll(from: CommitmentRow[], rows: CommitmentRow[]): CommitmentRow[] {
  for (const r of rows) {
    // Equal keys are possible (a row replaced by one differing only in status): find this very row.
    for (let i = firstWhere(from, 0, from.length, (x) => compareRows(x, r) >= 0); i < from.length && compareRows(from[i]!, r) === 0; i++) {
      if (from[i] === r) {
        from.splice(i, 1);
        break;
      }
    }
  }
  return from;
}

function insertAll(into: CommitmentRow[], rows: CommitmentRow[]): CommitmentRow[] {
  for (const r of rows) into.splice(firstWhere(into, 0, into.length, (x) => compareRows(x, r) > 0), 0, r);
  return into;
}

function merge(a: CommitmentRow[], b: CommitmentRow[]): CommitmentRow[] {
  const out = new Array<CommitmentRow>(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = compareRows(a[i]!, b[j]!) <= 0 ? a[i++]! : b[j++]!;
  while (i < a.length) out[k++] = a[i++]!;
  while (j < b.length) out[k++] = b[j++]!;
  return out;
}

type Segment = { rows: readonly CommitmentRow[]; lo: number; hi: number };

export function createCommitmentIndex() {
  const lists = new Map<string, SortedRows>();
  const byAgreement = new Map<string, CommitmentRow[]>();
  const ordinals = new Map<string, number>();
  const folded: string[] = [];
  const foldedIds = new Map<string, number>();
  const institutionId = (institution: string) => {
    const f = foldText(institution);
    let id = foldedIds.get(f);
    if (id === undefined) {
      foldedIds.set(f, (id = folded.length));
      folded.push(f);
    }
    return id;
  };
  const list = (key: string) => {
    let l = lists.get(key);
    if (!l) lists.set(key, (l = new SortedRows()));
    return l;
  };
  // Pairs too, so the common two-filter lists (delayed in health, VEN's delayed ones) walk
  // only what matches both instead of counting their way through one.
  const listKeys = (r: CommitmentRow) => [
    'all', isOpen(r.status) ? 'open' : 'closed', `st:${r.status}`, `pa:${r.party}`, `se:${r.sector}`,
    `st:${r.status}|se:${r.sector}`, `st:${r.status}|pa:${r.party}`, `pa:${r.party}|se:${r.sector}`,
  ];

  function add(r: CommitmentRow): void {
    for (const k of listKeys(r)) list(k).add(r);
  }
  function retire(r: CommitmentRow): void {
    r.dead = true;
    for (const k of listKeys(r)) lists.get(k)!.retire(r);
  }

  return {
    /** Replaces the rows of one agreement by those of its new state; answers the statuses that left and arrived. */
    put(a: ExistingAgreement): { removed: CommitmentRow['status'][]; added: CommitmentRow['status'][] } {
      const removed: CommitmentRow['status'][] = [];
      const added: CommitmentRow['status'][] = [];
      let ord = ordinals.get(a.id);
      if (ord === undefined) ordinals.set(a.id, (ord = ordinals.size));
      const before = byAgreement.get(a.id) ?? [];
      const after: CommitmentRow[] = new Array(a.commitments.length);
      a.commitments.forEach((c, pos) => {
        const old = before[pos];
        if (old && old.c === c && old.aid === a.id && old.sector === a.sector) {
          old.a = a;
          after[pos] = old;
          return;
        }
        const r = c.responsible;
        if (old && old.due === c.dueDate && old.cid === c.id && old.status === c.status && old.party === r.party && old.institution === r.institution && old.sector === a.sector && old.aid === a.id) {
          old.c = c;
          old.a = a;
          after[pos] = old;
          return;
        }
        if (old) {
          retire(old);
          removed.push(old.status);
        }
        added.push(c.status);
        const row: CommitmentRow = {
          due: c.dueDate ?? UNDATED, cid: c.id, aid: a.id, status: c.status, party: r.party, sector: a.sector, institution: r.institution,
          inst: old && old.institution === r.institution ? old.inst : institutionId(r.institution), ord, pos, c, a, dead: false,
        };
        add(row);
        after[pos] = row;
      });
      for (let pos = a.commitments.length; pos < before.length; pos++) {
        retire(before[pos]!);
        removed.push(before[pos]!.status);
      }
      byAgreement.set(a.id, after);
      return { removed, added };
    },

    list(f: CommitmentFilter, now: string): Page<CommitmentListItem> {
      const after = decodeCursor(f.cursor, 3);
      const today = now.slice(0, 10);
      const institution = f.institution ? foldText(f.institution) : null;
      const overdue = f.overdue === undefined ? null : f.overdue === 'true';

      // Candidate lists, each a run of sorted segments; the smallest one is walked.
      const whole = (key: string): Segment[] => {
        const rows = lists.get(key)?.rows() ?? [];
        return [{ rows, lo: 0, hi: rows.length }];
      };
      const beforeToday = (rows: readonly CommitmentRow[]) => firstWhere(rows, 0, rows.length, (r) => r.due >= today);
      type Covered = 'agreement' | 'status' | 'party' | 'sector' | 'overdue';
      type Candidate = { segments: Segment[]; covers: Covered[] };
      const candidates: Candidate[] = [];
      if (f.agreementId) {
        const rows = (byAgreement.get(f.agreementId) ?? []).slice().sort(compareRows);
        candidates.push({ segments: [{ rows, lo: 0, hi: rows.length }], covers: ['agreement'] });
      }
      if (f.status) candidates.push({ segments: whole(`st:${f.status}`), covers: ['status'] });
      if (f.party) candidates.push({ segments: whole(`pa:${f.party}`), covers: ['party'] });
      if (f.sector) candidates.push({ segments: whole(`se:${f.sector}`), covers: ['sector'] });
      if (f.status && f.sector) candidates.push({ segments: whole(`st:${f.status}|se:${f.sector}`), covers: ['status', 'sector'] });
      if (f.status && f.party) candidates.push({ segments: whole(`st:${f.status}|pa:${f.party}`), covers: ['status', 'party'] });
      if (f.party && f.sector) candidates.push({ segments: whole(`pa:${f.party}|se:${f.sector}`), covers: ['party', 'sector'] });
      if (overdue === true) {
        const open = lists.get('open')?.rows() ?? [];
        candidates.push({ segments: [{ rows: open, lo: 0, hi: beforeToday(open) }], covers: ['overdue'] });
      } else if (overdue === false) {
        // Not overdue: closed ones due before today, then everything due from today on; in list order.
        const closed = lists.get('closed')?.rows() ?? [];
        const all = lists.get('all')?.rows() ?? [];
        candidates.push({ segments: [{ rows: closed, lo: 0, hi: beforeToday(closed) }, { rows: all, lo: beforeToday(all), hi: all.length }], covers: ['overdue'] });
      }
      if (candidates.length === 0) candidates.push({ segments: whole('all'), covers: [] });
      for (const cand of candidates) {
        for (const s of cand.segments) {
          if (f.dueAfter) {
            const d = f.dueAfter;
            s.lo = firstWhere(s.rows, s.lo, s.hi, (r) => r.due > d);
            // A pending date is not after any day.
            s.hi = Math.max(s.lo, firstWhere(s.rows, s.lo, s.hi, (r) => r.due >= UNDATED));
          }
          if (f.dueBefore) {
            const d = f.dueBefore;
            s.hi = Math.max(s.lo, firstWhere(s.rows, s.lo, s.hi, (r) => r.due >= d));
          }
        }
      }
      const sizeOf = (c: Candidate) => c.segments.reduce((n, s) => n + s.hi - s.lo, 0);
      const best = candidates.reduce((x, y) => (sizeOf(y) < sizeOf(x) ? y : x));

      // What the walked list does not guarantee is checked row by row.
      const covered = (what: Covered) => best.covers.includes(what);
      const aid = !covered('agreement') ? f.agreementId ?? null : null;
      const status = !covered('status') ? f.status ?? null : null;
      const party = !covered('party') ? f.party ?? null : null;
      const sector = !covered('sector') ? f.sector ?? null : null;
      const due = !covered('overdue') ? overdue : null;
      let institutions: Uint8Array | null = null;
      if (institution !== null) {
        institutions = new Uint8Array(folded.length);
        folded.forEach((name, i) => {
          if (name.includes(institution)) institutions![i] = 1;
        });
      }
      const checked = aid !== null || status !== null || party !== null || sector !== null || due !== null || institutions !== null;
      const matches = (r: CommitmentRow) =>
        (aid === null || r.aid === aid) && (status === null || r.status === status) && (party === null || r.party === party) &&
        (sector === null || r.sector === sector) && (due === null || (isOpen(r.status) && r.due < today) === due) &&
        (institutions === null || institutions[r.inst] === 1);

      let total = 0;
      const page: CommitmentRow[] = [];
      let more = false;
      for (const s of best.segments) {
        // Rows up to the cursor only count towards the total.
        const start = after ? Math.max(s.lo, firstWhere(s.rows, s.lo, s.hi, (r) => compareKey(r, after) > 0)) : s.lo;
        if (!checked) {
          total += s.hi - s.lo;
          for (let i = start; i < s.hi; i++) {
            if (page.length === f.limit) {
              more = true;
              break;
            }
            page.push(s.rows[i]!);
          }
          continue;
        }
        for (let i = s.lo; i < s.hi; i++) {
          const r = s.rows[i]!;
          if (!matches(r)) continue;
          total++;
          if (i < start) continue;
          if (page.length < f.limit) page.push(r);
          else more = true;
        }
      }
      const last = page.at(-1);
      return {
        items: page.map((r) => ({ ...commitmentView(r.c, now), agreementTitle: r.a.title, sector: r.a.sector })),
        total,
        nextCursor: more && last ? encodeCursor([last.due, last.cid, last.aid]) : null,
      };
    },

    /** Open commitments due before the day of `now`, for the dashboard's overdue count. */
    overdue(now: string): number {
      const today = now.slice(0, 10);
      const open = lists.get('open')?.rows() ?? [];
      return firstWhere(open, 0, open.length, (r) => r.due >= today);
    },
  };
}
export type CommitmentIndex = ReturnType<typeof createCommitmentIndex>;
