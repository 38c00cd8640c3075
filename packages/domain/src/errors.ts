// The typed errors every layer speaks; the API maps each kind to one HTTP status in one place.
export type FieldError = { path: string; message: string };

export abstract class AppError extends Error {
  abstract readonly kind: 'validation' | 'not_found' | 'conflict' | 'concurrency' | 'forbidden';
  constructor(
    message: string,
    readonly code: string,
    readonly errors: FieldError[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that can never be accepted, whatever the state (400). */
export class ValidationError extends AppError {
  readonly kind = 'validation' as const;
  constructor(message: string, errors: FieldError[], code = 'invalid_input') {
    super(message, code, errors);
  }
}

/** The resource does not exist (404). */
export class NotFoundError extends AppError {
  readonly kind = 'not_found' as const;
}

/** The caller's credentials do not cover what the command touches (403). */
export class ForbiddenError extends AppError {
  readonly kind = 'forbidden' as const;
}

/** A domain rule refuses the command in the current state (409). */
export class ConflictError extends AppError {
  readonly kind = 'conflict' as const;
}

/** The stream moved on since the revision the caller expected (412 / retried). */
export class ConcurrencyError extends AppError {
  readonly kind = 'concurrency' as const;
  constructor(
    readonly stream: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`stream ${stream} is at revision ${actual}, not ${expected}`, 'stale_revision');
  }
}
