#include "app/image_viewer.h"

#include <QFileInfo>
#include <QFutureWatcher>
#include <QGraphicsPixmapItem>
#include <QGraphicsScene>
#include <QHBoxLayout>
#include <QImageReader>
#include <QLabel>
#include <QShortcut>
#include <QToolButton>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>

namespace wbgui {

ZoomImageView::ZoomImageView(QWidget* parent) : QGraphicsView(parent) {
    setObjectName(QStringLiteral("zoomImageView"));
    setScene(new QGraphicsScene(this));
    setDragMode(QGraphicsView::ScrollHandDrag);
    setTransformationAnchor(QGraphicsView::AnchorUnderMouse);
    setResizeAnchor(QGraphicsView::AnchorViewCenter);
    setRenderHint(QPainter::SmoothPixmapTransform);
    setAlignment(Qt::AlignCenter);
    setBackgroundBrush(palette().window());
}

void ZoomImageView::setImage(const QImage& image) {
    scene()->clear();
    m_item = scene()->addPixmap(QPixmap::fromImage(image));
    m_item->setTransformationMode(Qt::SmoothTransformation);
    m_imageSize = image.size();
    scene()->setSceneRect(m_item->boundingRect());
    fitToWindow();
}

bool ZoomImageView::hasImage() const { return m_item != nullptr; }

void ZoomImageView::applyZoom(double zoom) {
    m_zoom = zoom;
    setTransform(QTransform::fromScale(zoom, zoom));
    Q_EMIT zoomChanged(zoom);
}

void ZoomImageView::fitToWindow() {
    m_fit = true;
    if (!m_item || m_imageSize.isEmpty()) return;
    const QSize area = viewport()->size() - QSize(2, 2);
    const double z = std::min(double(area.width()) / m_imageSize.width(), double(area.height()) / m_imageSize.height());
    applyZoom(std::clamp(std::min(z, 1.0), 0.02, 16.0));  // never blown up past 100% to fit
}

void ZoomImageView::setZoom(double zoom) {
    m_fit = false;
    applyZoom(std::clamp(zoom, 0.02, 16.0));
}

void ZoomImageView::wheelEvent(QWheelEvent* e) {
    if (e->modifiers() & Qt::ControlModifier) {
        const double steps = e->angleDelta().y() / 120.0;
        if (steps != 0) setZoom(m_zoom * std::pow(1.25, steps));
        e->accept();
        return;
    }
    QGraphicsView::wheelEvent(e);  // scrolls (pans) the image
}

void ZoomImageView::resizeEvent(QResizeEvent* e) {
    QGraphicsView::resizeEvent(e);
    if (m_fit) fitToWindow();
}

// ---------------------------------------------------------------------------------------------------------------

ImageViewer::ImageViewer(const QString& path, QWidget* parent) : QDialog(parent), m_path(path) {
    setObjectName(QStringLiteral("imageViewer"));
    setWindowTitle(QFileInfo(path).fileName());
    m_view = new ZoomImageView;
    m_status = new QLabel(tr("Loading %1…").arg(QFileInfo(path).fileName()));
    m_status->setObjectName(QStringLiteral("imageViewerStatus"));
    m_zoomLabel = new QLabel;
    auto button = [this](const QString& text, const QString& tip, auto slot) {
        auto* b = new QToolButton;
        b->setText(text);
        b->setToolTip(tip);
        connect(b, &QToolButton::clicked, m_view, slot);
        return b;
    };
    auto* bar = new QHBoxLayout;
    bar->addWidget(button(tr("Fit"), tr("Fit the image to the window (0)"), &ZoomImageView::fitToWindow));
    bar->addWidget(button(QStringLiteral("100%"), tr("One image pixel per screen pixel (1)"), [this] { m_view->setZoom(1.0); }));
    bar->addWidget(button(QStringLiteral("−"), tr("Zoom out (-, Ctrl+wheel)"), &ZoomImageView::zoomOut));
    bar->addWidget(button(QStringLiteral("+"), tr("Zoom in (+, Ctrl+wheel)"), &ZoomImageView::zoomIn));
    bar->addWidget(m_zoomLabel);
    bar->addStretch();
    bar->addWidget(m_status);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(bar);
    layout->addWidget(m_view, 1);
    for (const auto& [key, slot] : std::initializer_list<std::pair<QKeySequence, void (ZoomImageView::*)()>>{
             {QKeySequence(Qt::Key_Plus), &ZoomImageView::zoomIn},
             {QKeySequence(Qt::Key_Equal), &ZoomImageView::zoomIn},
             {QKeySequence(Qt::Key_Minus), &ZoomImageView::zoomOut},
             {QKeySequence(Qt::Key_0), &ZoomImageView::fitToWindow}})
        connect(new QShortcut(key, this), &QShortcut::activated, m_view, slot);
    connect(new QShortcut(QKeySequence(Qt::Key_1), this), &QShortcut::activated, m_view, [this] { m_view->setZoom(1.0); });
    connect(m_view, &ZoomImageView::zoomChanged, this, &ImageViewer::updateZoomLabel);

    auto* watcher = new QFutureWatcher<QImage>(this);  // dies with the dialog: a late result goes nowhere
    connect(watcher, &QFutureWatcher<QImage>::finished, this, [this, watcher] {
        const QImage img = watcher->result();
        if (img.isNull()) {
            m_status->setText(tr("Cannot show %1: it is not a readable image (any more)").arg(m_path));
            return;
        }
        m_status->clear();
        m_view->setImage(img);
        setWindowTitle(tr("%1 — %2 × %3").arg(QFileInfo(m_path).fileName()).arg(img.width()).arg(img.height()));
        updateZoomLabel();
    });
    watcher->setFuture(QtConcurrent::run([path] {
        QImageReader reader(path);
        reader.setAutoTransform(true);
        return reader.read();
    }));
    resize(900, 700);
}

QString ImageViewer::statusText() const { return m_status->text(); }

void ImageViewer::updateZoomLabel() {
    m_zoomLabel->setText(m_view->hasImage() ? tr("%1%%2").arg(qRound(m_view->zoom() * 100))
                                                    .arg(m_view->isFitted() ? tr(" (fitted)") : QString())
                                            : QString());
}

ImageViewer* ImageViewer::open(const QString& path, QWidget* parent) {
    auto* v = new ImageViewer(path, parent);
    v->setAttribute(Qt::WA_DeleteOnClose);
    v->show();
    return v;
}

}  // namespace wbgui
