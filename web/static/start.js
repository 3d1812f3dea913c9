/* Starts the page's script: the page says which it is (data-page, data-job-id, data-sweep-id on
   <body>), so no script is inline and the Content-Security-Policy allows this origin's files only. */
(function () {
  var page = document.body.dataset;
  if (page.page === "job") {
    trainq.start(function () { trainqJob.page(page.jobId); });
  } else if (page.page === "submit") {
    trainq.start(trainqSubmit.page);
  } else if (page.page === "sweeps") {
    trainq.start(trainqSweeps.listPage);
  } else if (page.page === "compare") {
    trainq.start(trainqCompare.page);
  } else if (page.page === "models") {
    trainq.start(trainqModels.listPage);
  } else if (page.page === "sweep") {
    trainq.start(function () { trainqSweeps.sweepPage(page.sweepId); });
  } else {
    trainq.start(trainq.listPage);
  }
})();
