// Light and dark: the colours the views draw with, derived from the application palette, so the chat bubbles, the
// charts and the status colours follow the system palette (or the Appearance the user chose in View) instead of
// hard-coded light colours. Views that set colours themselves re-apply them on QEvent::ApplicationPaletteChange.
#pragma once

#include <QColor>
#include <QString>

class QCustomPlot;
class QPalette;

namespace wbgui::theme {

enum class Appearance { System, Light, Dark };

/// Sets the application palette: the system's (as it was when the app started), or Fusion light / dark.
void apply(Appearance a);
Appearance current();
QString name(Appearance a);            // "system", "light", "dark" (the settings' spelling)
Appearance fromName(const QString& s);  // unknown: System

/// Whether the current application palette is dark (its window colour).
bool isDark();

QColor userBubble();
QColor assistantBubble();
QColor mutedText();
QColor errorText();
QColor okText();
QColor warningBackground();
QColor border();
/// "#rrggbb" of a colour, for style sheets.
QString css(const QColor& c);

/// Background, axes, grid, ticks, labels and legend of a chart in the palette's colours.
void stylePlot(QCustomPlot* plot);

}  // namespace wbgui::theme
