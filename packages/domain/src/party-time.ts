// Each party's own calendar: "today" for a commitment is the date in the time zone of the party
// responsible for it, not the UTC date (Caracas is UTC-4, Moscow UTC+3).

/** The documented defaults; any other party reads its days in UTC unless configured. */
export const DEFAULT_PARTY_TIME_ZONES: Readonly<Record<string, string>> = { VEN: 'America/Caracas', RUS: 'Europe/Moscow' };

export function partyTimeZone(party: string, zones: Readonly<Record<string, string>> = DEFAULT_PARTY_TIME_ZONES): string {
  return zones[party] ?? 'UTC';
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date (YYYY-MM-DD) of `instant` in the IANA `timeZone`. */
export function localDate(instant: string, timeZone: string): string {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  return f.format(new Date(instant));
}

/** "Today" for `party` at `instant`. */
export function partyToday(party: string, instant: string, zones?: Readonly<Record<string, string>>): string {
  return localDate(instant, partyTimeZone(party, zones));
}
