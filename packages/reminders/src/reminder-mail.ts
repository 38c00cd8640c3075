// The reminder e-mail, rendered pure: subject, text and HTML from a review, its agenda and one
// planned send. Everything a reader sees is in the attendee's locale (labels, status names,
// dates, percentages), and dates are shown in UTC and say so, because attendees sit in several
// time zones and one stated zone is less ambiguous than a guess at theirs.
// No I/O and no clock here: `now` (the instant the agenda was computed) arrives as an argument.
import type { AgreementStatus, CommitmentStatus, Locale, Responsible } from '@cm/domain';
import type { PlannedReminder } from './reminder-planning.js';

/** What the mail needs of a review; an `ExistingReview` or a review view fits. */
export type ReminderReview = { id: string; title: string; scheduledFor: string; location: string | null };

/**
 * What the mail needs of the agenda: the shape `reviewAgenda` (read-models) returns. Spelled out
 * structurally so rendering depends on the data, not on the read-model package.
 */
export type ReminderAgendaItem = {
  agreementId: string;
  title: string;
  status: AgreementStatus;
  progress: number;
  commitments: ReadonlyArray<{
    title: string;
    responsible: Responsible;
    /** null: relative to an event that has not happened (never on an agenda, which lists what falls due). */
    dueDate: string | null;
    status: CommitmentStatus;
    overdue: boolean;
    progress: number;
  }>;
};

export type RenderReminderInput = {
  review: ReminderReview;
  agenda: readonly ReminderAgendaItem[];
  reminder: Pick<PlannedReminder, 'email' | 'name' | 'locale'>;
  /** Base URL of the public API; no link in the mail when null. */
  publicUrl: string | null;
  now: string;
};

export type RenderedReminder = { subject: string; text: string; html: string };

type Messages = {
  /** BCP 47 tag for Intl: `en` renders as en-GB so dates read "20 January 2027", day first, as in most of the parties' usage. */
  intl: string;
  subject: (title: string, date: string) => string;
  greeting: (name: string | null) => string;
  intro: (title: string, when: string) => string;
  location: string;
  agendaHeading: string;
  status: string;
  progress: string;
  commitment: string;
  responsible: string;
  dueDate: string;
  overdue: string;
  nothingLate: string;
  agreementClear: string;
  link: string;
  asOf: (when: string) => string;
  footer: string;
  agreementStatus: Record<AgreementStatus, string>;
  commitmentStatus: Record<CommitmentStatus, string>;
};

// Records keyed by the zod enums: a new status or locale fails the typecheck until it is translated.
const MESSAGES: Record<Locale, Messages> = {
  en: {
    intl: 'en-GB',
    subject: (title, date) => `Reminder: ${title} on ${date}`,
    greeting: (name) => (name ? `Dear ${name},` : 'Hello,'),
    intro: (title, when) => `This is a reminder of the review meeting “${title}” on ${when}.`,
    location: 'Location',
    agendaHeading: 'Agenda: what is delayed, overdue or due before the meeting',
    status: 'Status',
    progress: 'Progress',
    commitment: 'Commitment',
    responsible: 'Responsible',
    dueDate: 'Due date',
    overdue: 'Overdue',
    nothingLate: 'Nothing is late: no commitment in scope is delayed, overdue or due before the meeting.',
    agreementClear: 'No commitment of this agreement is late or due before the meeting.',
    link: 'The review online',
    asOf: (when) => `Agenda as of ${when}.`,
    footer: 'You receive this reminder because you are listed as an attendee of this review.',
    agreementStatus: {
      signed: 'Signed',
      in_implementation: 'In implementation',
      delayed: 'Delayed',
      implemented: 'Implemented',
      cancelled: 'Cancelled',
      terminated: 'Terminated',
    },
    commitmentStatus: {
      pending: 'Pending',
      in_progress: 'In progress',
      delayed: 'Delayed',
      implemented: 'Implemented',
      cancelled: 'Cancelled',
    },
  },
  es: {
    intl: 'es',
    subject: (title, date) => `Recordatorio: ${title} el ${date}`,
    greeting: (name) => (name ? `Estimado/a ${name}:` : 'Buenos días:'),
    intro: (title, when) => `Le recordamos la reunión de revisión «${title}», el ${when}.`,
    location: 'Lugar',
    agendaHeading: 'Orden del día: lo retrasado, vencido o que vence antes de la reunión',
    status: 'Estado',
    progress: 'Avance',
    commitment: 'Compromiso',
    responsible: 'Responsable',
    dueDate: 'Fecha límite',
    overdue: 'Vencido',
    nothingLate: 'Nada está atrasado: ningún compromiso de la revisión está retrasado, vencido ni vence antes de la reunión.',
    agreementClear: 'Ningún compromiso de este acuerdo está atrasado ni vence antes de la reunión.',
    link: 'La revisión en línea',
    asOf: (when) => `Orden del día elaborado el ${when}.`,
    footer: 'Recibe este recordatorio porque figura como participante en esta revisión.',
    // Agreement (acuerdo) and commitment (compromiso) are both masculine: one adjective form serves both.
    agreementStatus: {
      signed: 'Firmado',
      in_implementation: 'En ejecución',
      delayed: 'Retrasado',
      implemented: 'Cumplido',
      cancelled: 'Cancelado',
      terminated: 'Terminado',
    },
    commitmentStatus: {
      pending: 'Pendiente',
      in_progress: 'En curso',
      delayed: 'Retrasado',
      implemented: 'Cumplido',
      cancelled: 'Cancelado',
    },
  },
  ru: {
    intl: 'ru',
    subject: (title, date) => `Напоминание: ${title} — ${date}`,
    greeting: (name) => (name ? `Здравствуйте, ${name}!` : 'Здравствуйте!'),
    intro: (title, when) => `Напоминаем о заседании по обзору «${title}»: ${when}.`,
    location: 'Место',
    agendaHeading: 'Повестка: что задерживается, просрочено или должно быть выполнено до заседания',
    status: 'Статус',
    progress: 'Выполнение',
    commitment: 'Обязательство',
    responsible: 'Ответственный',
    dueDate: 'Срок',
    overdue: 'Просрочено',
    nothingLate: 'Отставаний нет: ни одно обязательство в рамках обзора не задерживается, не просрочено и не должно быть выполнено до заседания.',
    agreementClear: 'По этому соглашению нет обязательств с задержкой или сроком до заседания.',
    link: 'Страница обзора',
    asOf: (when) => `Повестка по состоянию на ${when}.`,
    footer: 'Вы получили это напоминание, потому что указаны участником этого обзора.',
    // Соглашение and обязательство are both neuter: the short forms agree with either.
    agreementStatus: {
      signed: 'Подписано',
      in_implementation: 'Выполняется',
      delayed: 'С задержкой',
      implemented: 'Выполнено',
      cancelled: 'Отменено',
      terminated: 'Прекращено',
    },
    commitmentStatus: {
      pending: 'Не начато',
      in_progress: 'Выполняется',
      delayed: 'С задержкой',
      implemented: 'Выполнено',
      cancelled: 'Отменено',
    },
  },
};

function formatters(intl: string) {
  const date = new Intl.DateTimeFormat(intl, { year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' });
  // timeZoneName makes Intl append "UTC" itself, in the position the locale expects.
  const dateTime = new Intl.DateTimeFormat(intl, {
    year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'UTC', timeZoneName: 'short',
  });
  const percent = new Intl.NumberFormat(intl, { style: 'percent', maximumFractionDigits: 0 });
  return {
    // A due date is a calendar day (YYYY-MM-DD); read it as midnight UTC so no zone shifts the day.
    day: (isoDate: string) => date.format(new Date(`${isoDate.slice(0, 10)}T00:00:00Z`)),
    instantDay: (instant: string) => date.format(new Date(instant)),
    instant: (instant: string) => dateTime.format(new Date(instant)),
    percent: (progress: number) => percent.format(progress / 100),
  };
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Every value that reaches the HTML part goes through here: titles and names are user input. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

export function reviewLink(publicUrl: string | null, reviewId: string): string | null {
  if (!publicUrl) return null;
  return `${publicUrl.replace(/\/+$/, '')}/v1/reviews/${encodeURIComponent(reviewId)}`;
}

export function renderReminder(input: RenderReminderInput): RenderedReminder {
  const { review, agenda, reminder } = input;
  // An unknown locale (older data, hand-written job) still gets a readable mail rather than a crash.
  const m = MESSAGES[reminder.locale] ?? MESSAGES.en;
  const f = formatters(m.intl);
  const when = f.instant(review.scheduledFor);
  const link = reviewLink(input.publicUrl, review.id);
  const empty = agenda.every((a) => a.commitments.length === 0);

  // A header is one line: a line break pasted into a title must not reach the Subject.
  const subject = m.subject(review.title, f.instantDay(review.scheduledFor)).replace(/\s+/g, ' ').trim();

  // --- text part ---
  const lines: string[] = [m.greeting(reminder.name), '', m.intro(review.title, when)];
  if (review.location) lines.push(`${m.location}: ${review.location}`);
  lines.push('', m.agendaHeading, '');
  for (const a of agenda) {
    lines.push(`== ${a.title} ==`, `${m.status}: ${m.agreementStatus[a.status]} · ${m.progress}: ${f.percent(a.progress)}`, '');
    if (a.commitments.length === 0 && !empty) lines.push(m.agreementClear, '');
    for (const c of a.commitments) {
      const status = m.commitmentStatus[c.status] + (c.overdue ? ` [${m.overdue.toLocaleUpperCase(m.intl)}]` : '');
      lines.push(
        `- ${c.title}`,
        `  ${m.responsible}: ${c.responsible.institution} (${c.responsible.party})`,
        `  ${m.dueDate}: ${(c.dueDate === null ? '-' : f.day(c.dueDate))}`,
        `  ${m.status}: ${status} · ${m.progress}: ${f.percent(c.progress)}`,
        '',
      );
    }
  }
  if (empty) lines.push(m.nothingLate, '');
  if (link) lines.push(`${m.link}: ${link}`, '');
  lines.push(m.asOf(f.instant(input.now)), m.footer, '');
  const text = lines.join('\n');

  // --- HTML part: one table per agreement, inline styles only (mail clients drop <style>). ---
  const e = escapeHtml;
  const cell = 'style="border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top"';
  const parts: string[] = [
    '<!DOCTYPE html>',
    `<html lang="${e(reminder.locale)}"><head><meta charset="utf-8"><title>${e(subject)}</title></head>`,
    '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222;line-height:1.4">',
    `<p>${e(m.greeting(reminder.name))}</p>`,
    `<p>${e(m.intro(review.title, when))}</p>`,
  ];
  if (review.location) parts.push(`<p><strong>${e(m.location)}:</strong> ${e(review.location)}</p>`);
  parts.push(`<h1 style="font-size:18px;margin:24px 0 8px">${e(m.agendaHeading)}</h1>`);
  for (const a of agenda) {
    parts.push(
      `<h2 style="font-size:16px;margin:20px 0 4px">${e(a.title)}</h2>`,
      `<p style="margin:0 0 8px">${e(m.status)}: <strong>${e(m.agreementStatus[a.status])}</strong> · ${e(m.progress)}: ${e(f.percent(a.progress))}</p>`,
    );
    if (a.commitments.length === 0) {
      if (!empty) parts.push(`<p style="margin:0 0 8px;color:#555">${e(m.agreementClear)}</p>`);
      continue;
    }
    parts.push(
      '<table style="border-collapse:collapse;margin:0 0 8px" cellpadding="0" cellspacing="0">',
      `<tr>${[m.commitment, m.responsible, m.dueDate, m.status, m.progress].map((h) => `<th ${cell}>${e(h)}</th>`).join('')}</tr>`,
    );
    for (const c of a.commitments) {
      const overdue = c.overdue ? ` <strong style="color:#b00020">${e(m.overdue)}</strong>` : '';
      parts.push(
        '<tr>' +
          `<td ${cell}>${e(c.title)}</td>` +
          `<td ${cell}>${e(c.responsible.institution)} (${e(c.responsible.party)})</td>` +
          `<td ${cell}>${e((c.dueDate === null ? '-' : f.day(c.dueDate)))}</td>` +
          `<td ${cell}>${e(m.commitmentStatus[c.status])}${overdue}</td>` +
          `<td ${cell}>${e(f.percent(c.progress))}</td>` +
          '</tr>',
      );
    }
    parts.push('</table>');
  }
  if (empty) parts.push(`<p><strong>${e(m.nothingLate)}</strong></p>`);
  if (link) parts.push(`<p><a href="${e(link)}" style="color:#0b57d0">${e(m.link)}</a>: ${e(link)}</p>`);
  parts.push(`<p style="color:#555;font-size:12px">${e(m.asOf(f.instant(input.now)))}<br>${e(m.footer)}</p>`, '</body></html>', '');
  const html = parts.join('\n');

  return { subject, text, html };
}
