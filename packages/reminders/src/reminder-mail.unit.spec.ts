// What an attendee reads: the reminder in their language, with every late commitment on it,
// and user-typed titles that can never break out of the HTML.
import { describe, expect, it } from 'vitest';
import type { Locale } from '@cm/domain';
import { renderReminder, type RenderReminderInput, type ReminderAgendaItem } from './reminder-mail.js';

const review = { id: 'cian-xx-prep', title: 'CIAN XX preparatory review', scheduledFor: '2027-01-20T09:00:00.000Z', location: 'Caracas' };

const agenda: ReminderAgendaItem[] = [
  {
    agreementId: 'energy-2025',
    title: 'Energy cooperation agreement',
    status: 'delayed',
    progress: 40,
    commitments: [
      { title: 'Build the interconnector', responsible: { party: 'VEN', institution: 'Ministry of Electric Energy' }, dueDate: '2026-11-30', status: 'delayed', overdue: true, progress: 30 },
      { title: 'Train grid operators', responsible: { party: 'RUS', institution: 'Rosseti Academy' }, dueDate: '2027-01-15', status: 'in_progress', overdue: false, progress: 60 },
    ],
  },
  {
    agreementId: 'health-2026',
    title: 'Health protocol',
    status: 'in_implementation',
    progress: 10,
    commitments: [
      { title: 'Open two clinics', responsible: { party: 'VEN', institution: 'Ministry of Health' }, dueDate: '2027-01-10', status: 'pending', overdue: false, progress: 0 },
    ],
  },
];

function input(locale: Locale, over: Partial<RenderReminderInput> = {}): RenderReminderInput {
  return {
    review,
    agenda,
    reminder: { email: 'ana@example.org', name: 'Ana Pérez', locale },
    publicUrl: null,
    now: '2027-01-13T09:00:00.000Z',
    ...over,
  };
}

// Written out rather than computed with Intl, so a wrong locale or time zone shows up.
const expected: Record<Locale, {
  subject: string;
  dueDates: string[];
  labels: string[];
  overdue: string;
  nothingLate: string;
  agreementStatus: string;
}> = {
  en: {
    subject: 'Reminder: CIAN XX preparatory review on 20 January 2027',
    dueDates: ['30 November 2026', '15 January 2027', '10 January 2027'],
    labels: ['Delayed', 'In progress', 'Pending', 'Responsible', 'Due date', '20 January 2027 at 09:00 UTC'],
    overdue: 'Overdue',
    nothingLate: 'Nothing is late',
    agreementStatus: 'In implementation',
  },
  es: {
    subject: 'Recordatorio: CIAN XX preparatory review el 20 de enero de 2027',
    dueDates: ['30 de noviembre de 2026', '15 de enero de 2027', '10 de enero de 2027'],
    labels: ['Retrasado', 'En curso', 'Pendiente', 'Responsable', 'Fecha límite', 'Estimado/a Ana Pérez', '20 de enero de 2027 a las 09:00 UTC'],
    overdue: 'Vencido',
    nothingLate: 'Nada está atrasado',
    agreementStatus: 'En ejecución',
  },
  ru: {
    subject: 'Напоминание: CIAN XX preparatory review — 20 января 2027 г.',
    dueDates: ['30 ноября 2026 г.', '15 января 2027 г.', '10 января 2027 г.'],
    labels: ['С задержкой', 'Выполняется', 'Не начато', 'Ответственный', 'Срок', 'Здравствуйте, Ana Pérez!', '20 января 2027 г. в 09:00 UTC'],
    overdue: 'Просрочено',
    nothingLate: 'Отставаний нет',
    agreementStatus: 'Выполняется',
  },
};

describe('renderReminder', () => {
  for (const locale of ['en', 'es', 'ru'] as const) {
    describe(`in ${locale}`, () => {
      const want = expected[locale];

      it('names the review and its date in the subject', () => {
        expect(renderReminder(input(locale)).subject).toBe(want.subject);
      });

      it('carries every agenda commitment with its institution, party and localized due date in both parts', () => {
        const mail = renderReminder(input(locale));
        for (const part of [mail.text, mail.html]) {
          for (const a of agenda) {
            expect(part).toContain(a.title);
            for (const c of a.commitments) {
              expect(part).toContain(c.title);
              expect(part).toContain(c.responsible.institution);
              expect(part).toContain(c.responsible.party);
            }
          }
          for (const d of want.dueDates) expect(part).toContain(d);
          expect(part).not.toContain('2026-11-30');
        }
      });

      it('translates labels, statuses, the meeting time and the overdue mark', () => {
        const mail = renderReminder(input(locale));
        for (const part of [mail.text, mail.html]) {
          for (const label of want.labels) expect(part).toContain(label);
          expect(part).toContain(want.agreementStatus);
          expect(part.toLowerCase()).toContain(want.overdue.toLowerCase());
          expect(part).not.toContain(want.nothingLate);
        }
        if (locale !== 'en') {
          // No English status or label leaks into a translated mail.
          for (const english of ['Delayed', 'In progress', 'Pending', 'Overdue', 'Due date', 'January']) {
            expect(mail.text).not.toContain(english);
            expect(mail.html).not.toContain(english);
          }
        }
      });

      it('marks only the overdue commitment as overdue', () => {
        const mail = renderReminder(input(locale));
        const overdueRows = mail.html.split('<tr>').filter((row) => row.includes('<td') && row.includes(want.overdue));
        expect(overdueRows).toHaveLength(1);
        expect(overdueRows[0]).toContain('Build the interconnector');
      });

      it('says nothing is late when the agenda lists no commitment', () => {
        const empty = renderReminder(input(locale, { agenda: [{ ...agenda[1]!, commitments: [] }] }));
        expect(empty.text).toContain(want.nothingLate);
        expect(empty.html).toContain(want.nothingLate);
        expect(empty.text).toContain('Health protocol');
        const none = renderReminder(input(locale, { agenda: [] }));
        expect(none.text).toContain(want.nothingLate);
        expect(none.html).toContain(want.nothingLate);
        expect(none.html).not.toContain('<table');
      });
    });
  }

  it('defaults to English when the locale is unknown', () => {
    const mail = renderReminder(input('xx' as Locale));
    expect(mail.subject).toBe(expected.en.subject);
  });

  it('greets without a name when the attendee gave none', () => {
    const mail = renderReminder(input('en', { reminder: { email: 'x@example.org', name: null, locale: 'en' } }));
    expect(mail.text.startsWith('Hello,')).toBe(true);
  });

  it('links to the review only when a public URL is set', () => {
    const without = renderReminder(input('en'));
    expect(without.text).not.toContain('/v1/reviews/');
    expect(without.html).not.toContain('/v1/reviews/');
    const withUrl = renderReminder(input('es', { publicUrl: 'https://monitor.example.org/' }));
    expect(withUrl.text).toContain('https://monitor.example.org/v1/reviews/cian-xx-prep');
    expect(withUrl.html).toContain('href="https://monitor.example.org/v1/reviews/cian-xx-prep"');
  });

  it('escapes user-typed values in the HTML part and leaves the text part literal', () => {
    const hostile: RenderReminderInput = input('en', {
      review: { ...review, title: 'Review <script>alert(1)</script> & co', location: '"Hall" <b>' },
      agenda: [
        {
          ...agenda[0]!,
          title: 'Oil & gas <img src=x onerror=alert(1)>',
          commitments: [{ ...agenda[0]!.commitments[0]!, title: '<script>steal()</script> R&D', responsible: { party: 'VEN', institution: "O'Neil & Sons <i>" } }],
        },
      ],
    });
    const mail = renderReminder(hostile);
    expect(mail.html).not.toMatch(/<script|<img|<b>|<i>/);
    expect(mail.html).toContain('Review &lt;script&gt;alert(1)&lt;/script&gt; &amp; co');
    expect(mail.html).toContain('Oil &amp; gas &lt;img src=x onerror=alert(1)&gt;');
    expect(mail.html).toContain('&lt;script&gt;steal()&lt;/script&gt; R&amp;D');
    expect(mail.html).toContain('O&#39;Neil &amp; Sons &lt;i&gt;');
    expect(mail.html).toContain('&quot;Hall&quot; &lt;b&gt;');
    // No bare ampersand survives: every & starts an entity.
    expect(mail.html).not.toMatch(/&(?!amp;|lt;|gt;|quot;|#39;)/);
    expect(mail.text).toContain('<script>steal()</script> R&D');
    expect(mail.subject).toBe('Reminder: Review <script>alert(1)</script> & co on 20 January 2027');
  });

  it('keeps the subject on one line whatever the title holds', () => {
    const mail = renderReminder(input('en', { review: { ...review, title: 'Line one\r\nBcc: x@evil.example' } }));
    expect(mail.subject).not.toMatch(/[\r\n]/);
  });
});
