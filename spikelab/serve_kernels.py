"""The kernel manager of ``spikelab dashboard``'s Voila server: pages that are closed give their kernels back, and
no more than ``max_kernels`` kernels run at once.

Voila starts a kernel (about 300 MB with torch) for every page view. This manager extends jupyter_server's
``AsyncMappingKernelManager`` (Voila wraps it in its preheating pool, which keeps its spare kernel out of culling):

- **a page closed**: a kernel whose page has connected and then gone (the tab closed, or moved on to another lab)
  is shut down once no page has been connected for ``closed_page_timeout`` seconds (a dropped connection
  reconnects well within that; a reloaded page gets a kernel of its own). Voila's page asks for its kernel's
  shutdown as it closes, but that request is refused here for want of an XSRF cookie, so this rule does the work.
  A kernel whose page never connected (a visitor who left while it ran, a page still loading) goes after
  ``cull_idle_timeout`` seconds. Either holds even while a training thread keeps the kernel sending messages
  (jupyter_server's own rule culls only kernels that send nothing). A kernel running cells is left alone (Voila
  runs a notebook's cells as its page loads); its clock starts when it is idle. The check runs every
  ``cull_interval`` seconds. A kernel with a page open is never culled (``cull_connected`` stays False). Shutting
  a kernel down asks it to exit; its ``atexit`` handlers run, and :func:`spikelab.viz._live.stop_all_tasks` stops
  any training in it, so the run folder ends "stopped".
- **the cap**: starting a kernel beyond ``max_kernels`` (counting kernels alive and starting, the preheated spare
  included) is refused with HTTP 503 and a message saying to close a tab; when a kernel goes, a preheat pool that
  lost its spare to the cap is refilled.

Only the Voila server process imports this module (``--VoilaConfiguration.multi_kernel_manager_class``); it needs
jupyter_server (the ``lab`` extra). The settings are passed on the command line (:func:`spikelab.serve.voila_command`).
"""
from __future__ import annotations

import time
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Int

TOO_MANY = ("Too many dashboards open: {n} dashboards are open on this server, its limit (spikelab dashboard "
            "--max-kernels {n}). Close a dashboard tab you no longer use and reload this page: a closed page's "
            "kernel is freed within {idle} s.")


class CappedKernelManager(AsyncMappingKernelManager):
    """``AsyncMappingKernelManager`` that culls kernels without a page and caps their number (see the module)."""

    max_kernels = Int(8, config=True, help="Most kernels alive at once (page kernels and the preheated spare); "
                                           "0: no limit.")

    closed_page_timeout = Int(30, config=True, help="Seconds after which a kernel whose page has connected and "
                                                    "then closed is shut down (capped by cull_idle_timeout).")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._had_page: set[str] = set()  # kernels a page has connected to
        self._live: set[str] = set()  # kernels this manager started and has not shut down
        self._starting = 0  # starts in progress (not yet in _live)
        self._alone_since: dict[str, float] = {}  # kernel -> monotonic time since which no page is connected
        self._stopping = False

    @property
    def kernel_count(self) -> int:
        """Kernels alive or starting (what the cap counts)."""
        return len([k for k in self._live if k in self._kernels]) + self._starting

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        if self.max_kernels > 0 and self.kernel_count >= self.max_kernels:
            message = TOO_MANY.format(n=self.max_kernels, idle=self._timeout(closed=True) + self.cull_interval)
            self.log.warning("Refusing a kernel: %s alive or starting (max_kernels=%s)", self.kernel_count,
                             self.max_kernels)
            raise HTTPError(503, message, reason=message)  # Voila's error page shows the reason
        self._starting += 1
        try:
            kernel_id = await super().start_kernel(*args, **kwargs)
        finally:
            self._starting -= 1
        self._live.add(kernel_id)
        return kernel_id

    async def shutdown_kernel(self, kernel_id: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)
        finally:
            self._live.discard(kernel_id)
            self._alone_since.pop(kernel_id, None)
            self._had_page.discard(kernel_id)
            if not self._stopping:
                self._refill_pools()

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._stopping = True
        return await super().shutdown_all(*args, **kwargs)

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._alone_since.pop(kernel_id, None)
        self._had_page.add(kernel_id)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id, 0) <= 0:
            self._alone_since[kernel_id] = time.monotonic()

    def _timeout(self, closed: bool) -> int:
        """Seconds without a page before a kernel is shut down: ``closed`` if a page had connected to it."""
        return min(self.cull_idle_timeout, self.closed_page_timeout) if closed else self.cull_idle_timeout

    async def cull_kernel_if_idle(self, kernel_id: str) -> None:
        """Shut ``kernel_id`` down if it has been without a page for ``closed_page_timeout`` seconds since its page
        closed, or ``cull_idle_timeout`` seconds if no page ever connected (or at once if it is dead).

        Voila's pool subclass has already returned for its preheated spare, so a kernel seen here alone for the first
        time (never connected yet, or just handed to a page that has not connected yet) starts its clock now. A
        kernel running cells is never culled (Voila renders a page by running its notebook before the browser
        connects) and its clock restarts; a kernel with a page connected is never culled. jupyter_server's own
        activity rule is not used: it would cull a kernel handed to a page before the page connects.
        """
        kernel = self._kernels.get(kernel_id)
        state = getattr(kernel, "execution_state", None)
        if kernel is None or state == "dead":
            await super().cull_kernel_if_idle(kernel_id)  # shuts a dead kernel down
            return
        if state in ("starting", "busy") or self._kernel_connections.get(kernel_id, 0) > 0 \
                or self.cull_idle_timeout <= 0:
            self._alone_since.pop(kernel_id, None)
            return
        alone = time.monotonic() - self._alone_since.setdefault(kernel_id, time.monotonic())
        if alone > self._timeout(closed=kernel_id in self._had_page):
            self.log.warning("Culling kernel %s: no page connected for %d s%s", kernel_id, alone,
                             " (its page closed)" if kernel_id in self._had_page else "")
            await self.shutdown_kernel(kernel_id)

    def _refill_pools(self) -> None:
        """Drop preheat tasks that failed (refused by the cap) and refill a pool left without its spare."""
        pools = getattr(self, "_pools", None)
        if not pools or not hasattr(self, "fill_if_needed"):
            return
        for name, pool in list(pools.items()):
            failed = [t for t in pool if t.done() and not t.cancelled() and t.exception() is not None]
            for t in failed:
                pool.remove(t)
            if not pool:
                self.fill_if_needed(notebook_name=name)
