/** The collaboration protocol as data: texts, names, answer extraction, run configuration. */
export * from './prompts';
export * from './answer';
export * from './runConfig';
