"""The embedded local Render: REST + SSE API, task socket, scheduler and SQLite store."""
