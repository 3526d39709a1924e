// An instructor's LTI launch: keep the session key the launch issued and the assignment launched from
// (the class view's "Send to the LMS" preselects it), then open the teacher page.
const { key, link, next } = document.body.dataset;
if (key) localStorage.setItem("draftmark-key", key);
if (link) localStorage.setItem("draftmark-lti-link", link);
location.replace(next && next.startsWith("/teacher") ? next : "/teacher");
