// An instructor's LTI launch: keep the session key the launch issued, then open the teacher page.
const { key, next } = document.body.dataset;
if (key) localStorage.setItem("draftmark-key", key);
location.replace(next && next.startsWith("/teacher") ? next : "/teacher");
