/// <reference lib="webworker" />
/**
 * Keeps the editor's shell (the page, its script and style) so that a reload works offline; the document
 * itself comes from IndexedDB. Pages are fetched network-first (a new build shows up at once), hashed
 * assets cache-first (their names change with their content). The API and WebSockets are never touched.
 */
export {}
declare const self: ServiceWorkerGlobalScope
/** Filled in by the build: the shell's paths, and a version that changes with them. */
declare const __SHELL__: string[]
declare const __VERSION__: string

const CACHE = `yjs-relay-shell-${__VERSION__}`

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(__SHELL__)).then(() => self.skipWaiting()))
})

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((key) => key.startsWith('yjs-relay-shell-') && key !== CACHE).map((key) => caches.delete(key))))
    .then(() => self.clients.claim()))
})

self.addEventListener('fetch', (event) => {
  const request = event.request
  const url = new URL(request.url)
  if (request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) return
  if (request.mode === 'navigate') {
    event.respondWith(fetch(request).catch(async () => (await caches.match('/', { cacheName: CACHE })) ?? Response.error()))
    return
  }
  if (!__SHELL__.includes(url.pathname)) return
  event.respondWith(caches.match(request, { cacheName: CACHE }).then((hit) => hit ?? fetch(request)))
})
