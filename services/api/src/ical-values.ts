// What may go into the .ics feed as a parameter value or a text value. ical-generator escapes
// TEXT values (\ ; , newline) as RFC 5545 says, but writes a quoted parameter with `\"`, an
// escape RFC 5545 does not have: a strict parser ends the quoted value there and reads what
// follows as more parameters and another address. Names are therefore made quote-free first,
// with RFC 6868's caret encoding (^' for ", ^^ for ^, ^n for a line break), which parsers that
// know it decode back and the others show as typed; control characters cannot appear in
// either (QSAFE-CHAR and TSAFE-CHAR exclude them) and are dropped.

// C0 controls but tab, and DEL. Line breaks are handled by each kind of value.
// eslint-disable-next-line no-control-regex -- the point is to match control characters
const CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g;

/** A value for a quoted parameter (CN="..."), passed to ical-generator, which adds the quotes. */
export function icalParamValue(value: string): string {
  return value
    .replace(CONTROLS, '')
    .replace(/\^/g, '^^')
    .replace(/\r\n|\r|\n/g, '^n')
    .replace(/"/g, "^'")
    // ical-generator doubles a backslash in a quoted value, which RFC 5545 would show doubled.
    .replace(/\\/g, '/');
}

/** A TEXT value (SUMMARY, LOCATION, DESCRIPTION): ical-generator escapes it; only controls go. */
export function icalTextValue(value: string): string {
  return value.replace(CONTROLS, '');
}
