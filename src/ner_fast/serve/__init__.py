"""`ner-fast serve`: the tagger behind HTTP (Starlette on uvicorn; install with `pip install ner-fast[serve]`).

- `app.create_app(tagger, settings)`: the ASGI app (endpoints, request checks and limits, Prometheus metrics);
- `batcher.Batcher`: dynamic batching of concurrent requests into one tagger call, in worker threads;
- `annotate.annotate`: what a worker does with a batch (tokenize, tag every sentence at once, build documents);
- `server.serve(tagger, host, port, settings)`: serve a loaded tagger until SIGTERM (exit 0);
- `static/`: the page at `/` (plain HTML, CSS and JavaScript; nothing from a CDN).
"""
