#include "app/theme.h"

#include <QApplication>
#include <QPalette>
#include <QStyle>
#include <QStyleFactory>
#include <qcustomplot.h>

namespace wbgui::theme {

namespace {
Appearance g_current = Appearance::System;
bool g_systemSaved = false;
QPalette g_systemPalette;
QString g_systemStyle;

QPalette darkPalette() {
    QPalette p;
    const QColor window(0x2b, 0x2d, 0x30), base(0x1e, 0x1f, 0x22), text(0xe6, 0xe6, 0xe6), mid(0x3c, 0x3f, 0x41);
    p.setColor(QPalette::Window, window);
    p.setColor(QPalette::WindowText, text);
    p.setColor(QPalette::Base, base);
    p.setColor(QPalette::AlternateBase, mid);
    p.setColor(QPalette::ToolTipBase, mid);
    p.setColor(QPalette::ToolTipText, text);
    p.setColor(QPalette::PlaceholderText, QColor(0x8a, 0x8a, 0x8a));
    p.setColor(QPalette::Text, text);
    p.setColor(QPalette::Button, mid);
    p.setColor(QPalette::ButtonText, text);
    p.setColor(QPalette::BrightText, QColor(0xff, 0x6b, 0x6b));
    p.setColor(QPalette::Light, QColor(0x4a, 0x4d, 0x50));
    p.setColor(QPalette::Midlight, QColor(0x40, 0x43, 0x46));
    p.setColor(QPalette::Mid, QColor(0x2f, 0x31, 0x34));
    p.setColor(QPalette::Dark, QColor(0x19, 0x1a, 0x1c));
    p.setColor(QPalette::Shadow, Qt::black);
    p.setColor(QPalette::Highlight, QColor(0x3d, 0x8e, 0xd8));
    p.setColor(QPalette::HighlightedText, Qt::white);
    p.setColor(QPalette::Link, QColor(0x6c, 0xb4, 0xff));
    p.setColor(QPalette::LinkVisited, QColor(0xb1, 0x8c, 0xff));
    for (QPalette::ColorRole r : {QPalette::WindowText, QPalette::Text, QPalette::ButtonText})
        p.setColor(QPalette::Disabled, r, QColor(0x80, 0x80, 0x80));
    return p;
}

QColor mix(const QColor& a, const QColor& b, double t) {
    return QColor::fromRgbF(float(a.redF() * (1 - t) + b.redF() * t), float(a.greenF() * (1 - t) + b.greenF() * t),
                            float(a.blueF() * (1 - t) + b.blueF() * t));
}
}  // namespace

void apply(Appearance a) {
    if (!g_systemSaved) {
        g_systemPalette = QApplication::palette();
        g_systemStyle = QApplication::style() ? QApplication::style()->name() : QString();
        g_systemSaved = true;
    }
    g_current = a;
    if (a == Appearance::System) {
        if (!g_systemStyle.isEmpty()) QApplication::setStyle(QStyleFactory::create(g_systemStyle));
        QApplication::setPalette(g_systemPalette);
        return;
    }
    QApplication::setStyle(QStyleFactory::create(QStringLiteral("Fusion")));  // draws with the palette everywhere
    QApplication::setPalette(a == Appearance::Dark ? darkPalette() : QApplication::style()->standardPalette());
}

Appearance current() { return g_current; }

QString name(Appearance a) {
    return a == Appearance::Dark ? QStringLiteral("dark") : a == Appearance::Light ? QStringLiteral("light")
                                                                                   : QStringLiteral("system");
}

Appearance fromName(const QString& s) {
    return s == QLatin1String("dark") ? Appearance::Dark : s == QLatin1String("light") ? Appearance::Light
                                                                                       : Appearance::System;
}

bool isDark() { return QApplication::palette().color(QPalette::Window).lightness() < 128; }

QColor userBubble() {
    const QPalette p = QApplication::palette();
    return mix(p.color(QPalette::Base), p.color(QPalette::Highlight), isDark() ? 0.22 : 0.10);
}
QColor assistantBubble() {
    const QPalette p = QApplication::palette();
    return mix(p.color(QPalette::Base), p.color(QPalette::Text), isDark() ? 0.06 : 0.02);
}
QColor mutedText() {
    const QPalette p = QApplication::palette();
    return mix(p.color(QPalette::Text), p.color(QPalette::Base), 0.45);
}
QColor errorText() { return isDark() ? QColor(0xff, 0x6b, 0x6b) : QColor(0xc6, 0x28, 0x28); }
QColor okText() { return isDark() ? QColor(0x81, 0xc7, 0x84) : QColor(0x2e, 0x7d, 0x32); }
QColor warningBackground() { return isDark() ? QColor(0x5a, 0x4a, 0x10) : QColor(0xff, 0xf3, 0xcd); }
QColor border() { return mix(QApplication::palette().color(QPalette::Base), QApplication::palette().color(QPalette::Text), 0.25); }
QString css(const QColor& c) { return c.name(QColor::HexRgb); }

void stylePlot(QCustomPlot* plot) {
    const QPalette p = QApplication::palette();
    const QColor text = p.color(QPalette::WindowText), grid = mix(p.color(QPalette::Base), text, 0.15);
    plot->setBackground(p.brush(QPalette::Base));
    for (QCPAxis* axis : plot->axisRect()->axes()) {
        axis->setBasePen(QPen(text));
        axis->setTickPen(QPen(text));
        axis->setSubTickPen(QPen(text));
        axis->setTickLabelColor(text);
        axis->setLabelColor(text);
        axis->grid()->setPen(QPen(grid, 1, Qt::DotLine));
    }
    plot->legend->setBrush(p.brush(QPalette::Base));
    plot->legend->setTextColor(text);
    for (int i = 0; i < plot->plotLayout()->elementCount(); ++i)
        if (auto* t = qobject_cast<QCPTextElement*>(plot->plotLayout()->elementAt(i))) t->setTextColor(text);
    plot->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace wbgui::theme
