// A window for one image at full resolution: opens fitted to the window (a 1080×2400 phone screenshot is taller than
// any screen), zooms with Ctrl+wheel, +/- or the buttons, 100% and "Fit" on a click, pans by dragging. The file is
// decoded on a pool thread, so opening a screenshot of megabytes never stalls the GUI.
#pragma once

#include <QDialog>
#include <QGraphicsView>
#include <QImage>

class QGraphicsPixmapItem;
class QLabel;
class QToolButton;

namespace wbgui {

/// The zoomable view inside ImageViewer (usable on its own).
class ZoomImageView : public QGraphicsView {
    Q_OBJECT
public:
    explicit ZoomImageView(QWidget* parent = nullptr);

    void setImage(const QImage& image);
    bool hasImage() const;
    QSize imageSize() const { return m_imageSize; }

    /// The scale shown (1.0 = 100%: one image pixel per screen pixel).
    double zoom() const { return m_zoom; }
    /// True while the image follows the window's size (the default, until the user zooms).
    bool isFitted() const { return m_fit; }
    void fitToWindow();
    void setZoom(double zoom);  // clamped to [0.02, 16]; leaves fit mode
    void zoomIn() { setZoom(m_zoom * 1.25); }
    void zoomOut() { setZoom(m_zoom / 1.25); }

Q_SIGNALS:
    void zoomChanged(double zoom);

protected:
    void wheelEvent(QWheelEvent* e) override;
    void resizeEvent(QResizeEvent* e) override;

private:
    void applyZoom(double zoom);
    QGraphicsPixmapItem* m_item = nullptr;
    QSize m_imageSize;
    double m_zoom = 1.0;
    bool m_fit = true;
};

class ImageViewer : public QDialog {
    Q_OBJECT
public:
    /// Opens at once with "Loading…"; the image follows when decoded (EXIF orientation applied, as the engine does).
    explicit ImageViewer(const QString& path, QWidget* parent = nullptr);

    ZoomImageView* view() const { return m_view; }
    QString path() const { return m_path; }
    /// Empty once the image is shown; the reason when it could not be read.
    QString statusText() const;

    /// Opens a viewer for `path` (deleted when closed) and returns it.
    static ImageViewer* open(const QString& path, QWidget* parent);

private:
    void updateZoomLabel();
    QString m_path;
    ZoomImageView* m_view;
    QLabel* m_status;
    QLabel* m_zoomLabel;
};

}  // namespace wbgui
