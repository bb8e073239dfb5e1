// Beside bad_view.cpp: a front end may include its own headers.
