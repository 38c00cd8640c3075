export * from './reminder-planning';
export * from './reminder-scheduler';
export * from './bullmq-scheduler';
export * from './reminder-sender';
export * from './reminders-role';
export * from './reminder-mail';
export * from './mailer';
