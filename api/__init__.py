"""The aiohttp application: routes, request/response models, auth, errors, OpenAPI, the CLI."""
