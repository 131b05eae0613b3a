// The page data of a static export (attrib explore); null when a server answers the API.
window.ATTRIB_DATA = null;
