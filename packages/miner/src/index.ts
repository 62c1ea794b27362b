// Placeholder: see README.md. The package builds so the workspace layout is real from day one.
export {};
