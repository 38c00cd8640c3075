import { randomUUID } from 'node:crypto';
import { createSqliteEventStore, type NewEvent } from '@cm/event-store';
const store = createSqliteEventStore({ path: process.argv[2]! });
store.db.pragma('synchronous = OFF');
const target = Number(process.argv[3]);
const A = Number(process.argv[4]);
const meta = () => ({ actor: 'gen', occurredAt: '2026-02-01T00:00:00.000Z', correlationId: randomUUID() });
const rev = new Map<string, number>();
let written = 0;
const put = async (id: string, e: Omit<NewEvent, 'id' | 'metadata'>) => {
  const r = rev.get(id);
  await store.append(`agreement-${id}`, [{ id: randomUUID(), metadata: meta(), ...e }], { expectedRevision: r === undefined ? 'no_stream' : r });
  rev.set(id, (r ?? -1) + 1);
  written++;
};
const ids = Array.from({ length: A }, (_, a) => `mix-${String(a).padStart(6, '0')}`);
for (const [a, id] of ids.entries()) await put(id, { type: 'AgreementSigned', data: { agreementId: id, title: `Mixed agreement ${a}`, kind: 'agreement', sector: ['health', 'energy', 'science'][a % 3], parties: ['VEN', 'RUS'], signedAt: '2025-11-28' } });
for (let c = 0; c < 5; c++) for (const id of ids) await put(id, { type: 'CommitmentAdded', data: { agreementId: id, commitmentId: `c-${c}`, title: `C ${c}`, dueDate: `2026-0${1 + c}-15`, responsible: { party: 'VEN', institution: `Institution ${c}` } } });
let k = 0;
while (written < target) { const id = ids[(k * 7919) % A]!; await put(id, { type: 'ProgressReported', data: { commitmentId: `c-${k % 5}`, percent: 1 + (k % 98) } }); k++; }
console.log('written', written);
await store.close();
