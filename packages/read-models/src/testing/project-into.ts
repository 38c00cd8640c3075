// Fills a read store the way the projector does, without a log: load the documents a batch
// needs (two rounds), fold the batch with projectBatch, commit documents and checkpoint.
// Test helper only (not exported from index.ts).
import type { StoredEvent } from '@cm/event-store';
import type { ProjectionChanges } from '../documents.js';
import { documentsNeeded, projectBatch } from '../ledger-projection.js';
import type { ReadStore } from '../read-store.js';

export async function projectInto(store: ReadStore, events: readonly StoredEvent[]): Promise<ProjectionChanges> {
  const first = documentsNeeded(events, new Map());
  const reviews = await store.getReviews(first.reviewIds);
  const { agreementIds } = documentsNeeded(events, reviews);
  const agreements = await store.getAgreements(agreementIds);
  const changes = projectBatch({ agreements, reviews }, events);
  // Where the documents were just read: the batch continues from there.
  await store.commit(changes, events.at(-1)!.position, { from: await store.checkpoint() });
  return changes;
}
