// Admin lists with a running import, training or eval run reload every 3 s until none runs,
// so their progress bars move without a click. Stops while the admin selects rows.
(function () {
  "use strict";
  function reloadIfRunning() {
    var running = document.querySelector("progress[data-running]");
    var selecting = document.querySelector("#result_list input.action-select:checked");
    if (running && !selecting && !document.hidden) {
      window.location.reload();
    }
  }
  window.setInterval(reloadIfRunning, 3000);
})();
